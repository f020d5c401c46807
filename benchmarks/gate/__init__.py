"""Judge benchmark: false-positive rate and detection power over synthetic metric series."""
