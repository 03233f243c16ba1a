build/examples/train_vision --out experiments/vision/runs/scratch epochs=17 threads=0
