"""`python -m search`: the nas-search command."""
from .cli import main

if __name__ == "__main__":
    main()
