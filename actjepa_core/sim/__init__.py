"""The embedded simulated arm: Meta-World's Sawyer in MuJoCo (arm.py), its scripted experts
(experts.py), expert demonstrations in the episodes format (collect.py), and the task names
(tasks.py, which loads no MuJoCo: importing this package loads nothing either)."""
