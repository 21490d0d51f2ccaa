"""The method of the paper, Sec. 3: exact streaming correlation of two models' units (Eq. 1-2)
and its stores, generated image batches, best buddies (Eq. 3), Rosetta units and concepts
(Eq. 4)."""
