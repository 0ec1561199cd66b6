"""The lesson screen and its widgets (array grids, step panel, the edit form modal)."""
