"""Rosetta Neurons: mining the common units in a model zoo (Dravid et al., ICCV 2023)."""
