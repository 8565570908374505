"""Downloads of a study (CF-7): encrypted, split ZIP packages with a DICOMDIR (docs/cloudfilm.md §6)."""
