"""Write the centromere BED of the demo genome from SGD's GenBank files (format conversion only).

Usage: python data/demo/yeast_R64/centromeres_from_genbank.py GENBANK_DIR > centromeres.bed
GENBANK_DIR holds chr01.gb.gz ... chr16.gb.gz (see PROVENANCE.md). Each file's whole-centromere feature
(note "CENn; Chromosome n centromere", either strand; its CDEI/II/III parts are skipped) becomes one BED line,
GenBank's 1-based inclusive start..end converted to 0-based half-open; records are named chr + the
file's /chromosome qualifier, as the FASTA.
"""

import gzip
import re
import sys
from pathlib import Path

for path in sorted(Path(sys.argv[1]).glob("chr*.gb.gz")):
    text = gzip.open(path, "rt").read()
    chrom = "chr" + re.search(r'/chromosome="([^"]+)"', text).group(1)
    for m in re.finditer(r"^ {5}centromere\s+(?:complement\()?(\d+)\.\.(\d+)\)?\n\s+/note=\"(CEN\w+); Chromosome", text, re.M):
        print(f"{chrom}\t{int(m.group(1)) - 1}\t{m.group(2)}\t{m.group(3)}")
