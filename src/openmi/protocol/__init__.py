"""Wire protocols openmi speaks; each is a sans-I/O codec (bytes ⇄ typed objects)."""
