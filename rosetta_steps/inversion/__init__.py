"""Rosetta-guided inversion and editing (paper, Sec. 4, Eq. 5-7): the objective, guidance by
the discriminative models, map edits, and the measurements of Table 1, Fig. 1 and Fig. 5."""
