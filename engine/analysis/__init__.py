"""Analysis: performance metrics, the event study, comparison of saved runs."""
