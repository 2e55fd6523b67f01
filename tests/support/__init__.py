"""Shared test scaffolding, imported as ``support.*`` (``pythonpath = ["tests"]``).

* builders.py: programs (``build``/``item`` by raw encoding, ``VvsProgram`` as .vvs);
* configs.py: the VMConfigs the tests share;
* machines.py: the backends (``backend`` names -> cores), running a core and
  comparing machine states;
* heaps.py: the heap oracle (PyHeap behind the HeapTester interface), the
  compiled HeapTester import, the random heap driver and the state comparison.
"""
