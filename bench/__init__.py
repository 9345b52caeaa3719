"""orbit_env benchmarks (design §8): every figure is a ratio measured in the same run.

``python -m bench [--quick] [--out DIR]`` runs the suite (:mod:`bench.run`);
``python -m bench.profile --env orbit_env/WalkerLEO-v1 --steps 3000`` profiles ``env.step``;
``python bench/geometry.py [--quick]`` runs the geometry benchmark alone.
"""
