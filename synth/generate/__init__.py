"""Generation: run configuration, the techniques (one file each), sources, grammars, import and the judge."""
