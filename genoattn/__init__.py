"""genoattn: hierarchical attention over genomes at six biological scales.

Levels hand data to each other only through zarr stores (see DESIGN.md and README.md).
Heavy optional parts (triton, cooler, pysam) are imported lazily by the modules that need them.
"""

__version__ = "0.1.0"

import warnings as _warnings

# Snakemake marks finished directory outputs with a `.snakemake_timestamp` file inside them, which
# zarr reports as an unknown object every time a store is opened; it is harmless.
_warnings.filterwarnings("ignore", message=r"Object at \.snakemake_timestamp is not recognized")
# genoattn consolidates metadata on purpose (xarray opens stores without listing them).
_warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
