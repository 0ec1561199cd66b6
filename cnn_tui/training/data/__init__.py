"""Data sets: the registry of loaders (`datasets`), the generated shapes set (`shapes`) and image folders (`image_files`)."""
