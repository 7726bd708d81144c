from fitscope.cli import run

run()
