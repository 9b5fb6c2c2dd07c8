"""A worker stuck in C code with the GIL held: none of its Python threads can run."""

import os

print(f"READY pid={os.getpid()} token=gil", flush=True)
sum(range(10**15))
