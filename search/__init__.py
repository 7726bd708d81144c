"""How candidates are proposed and trained: search space, model builder, one-trial training, study.

Nothing here imports mlflow: tracking attaches to the study through observers.
"""
