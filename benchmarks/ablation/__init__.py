"""The accuracy levers of issue #13 (``benchmarks/ablation.py`` runs them; its docstring gives the commands).

One module per step of an ablation:

- :mod:`.levers`: the levers, what each changes, and ``a+b`` combinations;
- :mod:`.runs`: where a (lever, seed) run lives and its stage configurations;
- :mod:`.plan`: the runs still to make and an estimate of their time;
- :mod:`.train`: a lever's supernet and branches trained (finished stages skipped);
- :mod:`.measure`: its evaluation grids, operating points and re-splits, as one row;
- :mod:`.paired`: widths against the teacher and levers against the baseline, on the same sentences;
- :mod:`.adopt`: a finished pipeline run copied as a seed's baseline;
- :mod:`.report`: the rows gathered and the tables written;
- :mod:`.cli`: the command line.
"""
