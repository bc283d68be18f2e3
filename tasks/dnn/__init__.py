"""OpenCV DNN over batches of images: the published networks and their lock, readNet and backends,
style transfer, colorization, our own colorizer (trained in Keras, exported to ONNX), reports.
`toy_networks` builds small test networks (for tests, benchmarks and `models toy`)."""
