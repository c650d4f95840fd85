"""DARTS-style blocks with architecture parameters: the LENNA study's search space."""
