build/examples/train_vision --out experiments/vision/runs/scratch epochs=20
