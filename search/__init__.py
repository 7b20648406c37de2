"""Search on shared weights: strategies, the evaluator, the synthetic benchmark and the search CLI."""
