"""What every capability shares: errors, hashing, the content-keyed cache, atomic files, tables,
figures, splits, downloads and image decoding. Imports nothing from the packages above it."""
