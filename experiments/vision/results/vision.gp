set terminal pngcairo size 1200,480
set output 'vision.png'
set multiplot layout 1,2 title 'Fashion-MNIST test accuracy (%)'
set grid
set key bottom right
set yrange [60:95]
set xlabel 'epochs'
plot 'scratch.points' using 1:3 with linespoints title 'TokenFormer, from scratch', 'torch.points' using 1:3 with linespoints title 'PyTorch ViT (nn.Linear)', 'grown.points' using 1:3 with linespoints title 'TokenFormer, grown at mid-training'
set xlabel 'training FLOPs'
set format x '%.0e'
plot 'scratch.points' using 2:3 with linespoints title 'TokenFormer, from scratch', 'torch.points' using 2:3 with linespoints title 'PyTorch ViT (nn.Linear)', 'grown.points' using 2:3 with linespoints title 'TokenFormer, grown at mid-training'
unset multiplot
