"""The Houses data: ingest (attributes and four photos per house), encoders, 2x2 montages, the cached
training-ready dataset, data sources (folder or URL of a zip) and the compact copy."""
