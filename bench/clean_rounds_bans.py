"""No honest client banned in 100 clean rounds: digits, Dirichlet(1.0) and (0.3), reputation-
weighted trimmed mean with ban threshold 0.2, 10 clients, seeds 0-2. Prints banned counts.

    python bench/clean_rounds_bans.py
"""

from dataclasses import replace

from qora.sim.run import RunConfig, simulate

base = RunConfig(attack="none", byzantine_fraction=0.0, defence="rep_trimmed_mean", rounds=100)
for alpha in (1.0, 0.3):
    for seed in range(3):
        r = simulate(replace(base, partition="dirichlet", alpha=alpha, seed=seed))
        print(f"dirichlet {alpha}, seed {seed}: banned {len(r.banned)} of 10, final accuracy {r.final_accuracy:.3f}")
