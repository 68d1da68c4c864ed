"""genoattn: hierarchical attention over genomes at six biological scales.

Levels hand data to each other only through zarr stores (see DESIGN.md and README.md).
Heavy optional parts (triton, cooler, pysam) are imported lazily by the modules that need them.
"""

__version__ = "0.1.0"
