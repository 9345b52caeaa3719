"""rl-baselines3-zoo's ``train`` with MaskablePPO available as ``--algo ppo_mask``.

No released rl_zoo3 (2.9.2 and earlier) lists sb3-contrib's MaskablePPO among its algorithms, so
``python -m rl_zoo3.train --algo ppo_mask`` stops at argument parsing. This launcher adds it to
the zoo's table and hands over; everything else is the zoo's own command line::

    python -m agents.zoo --algo ppo_mask --env orbit_env/Tiny-v1 --gym-packages orbit_env \\
        --conf-file agents/hyperparams/maskable_ppo.yml -n 2048

MaskablePPO reads the masks through the env's ``action_masks()`` (sb3-contrib's protocol), which
the zoo's vector envs forward. Needs the ``[zoo]`` extra (``pip install 'orbit-env[zoo]'``).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run ``rl_zoo3.train`` with ``ppo_mask`` registered; ``argv`` defaults to the command line."""
    try:
        import rl_zoo3.train
        from rl_zoo3.utils import ALGOS
    except ImportError as err:
        raise SystemExit(f"agents.zoo needs rl_zoo3 ({err}): pip install 'orbit-env[zoo]'") from None
    from sb3_contrib import MaskablePPO

    ALGOS.setdefault("ppo_mask", MaskablePPO)  # the table rl_zoo3.train and its ExperimentManager read
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    rl_zoo3.train.train()


if __name__ == "__main__":
    main()
