"""Reports: the HTML study report, its plots and Optuna views, and the console lines. They read
records and studies and write files; they record nothing in MLflow."""
