"""`python -m pipeline`: the nas-pipeline command."""
from .cli import main

if __name__ == "__main__":
    main()
