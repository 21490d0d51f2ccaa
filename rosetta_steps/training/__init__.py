"""Objectives that train the shapes zoo, one module each, and the metrics that show they learned."""
