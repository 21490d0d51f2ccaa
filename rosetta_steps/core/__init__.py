"""What every layer of the package uses: one-line user errors, the steps' shared command-line
options, devices, Zarr stores, unit names, image helpers and the procedural shapes world."""
