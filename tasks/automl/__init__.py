"""AutoKeras sweeps: budgets and the search space, each task's data, the search under a wall-clock
limit (resumable), one cached point per task x budget, the leaderboard, Dask for scaling out."""
