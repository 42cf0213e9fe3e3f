"""The ground floor: torch-free facts every layer reads (task specs and kinds, heads,
objectives, mechanisms, encoder families). Imports nothing else of the package."""
