"""`nas-pipeline`: supernet training, search and retraining in one command, ending with a report."""
