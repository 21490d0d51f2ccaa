"""The pages a person opens: the Rosetta dictionary (Fig. 2-3) and the pairwise best buddies,
each one self-contained HTML file with heatmaps, charts and filters."""
