"""House prices from attributes and photos: options, training data, the mlp/cnn/mixed models,
training, evaluation, reports, the leaderboard of several configurations, and predict."""
