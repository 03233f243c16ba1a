set terminal pngcairo size 1200,760 font ',11' noenhanced
set output 'experiments/scaling/results/frontier.png'
set datafile separator ','
set title "Final validation loss against training FLOPs: scratch models on their own schedules (the frontier: the best at each budget)\nand grown runs (mean +- sd over the seeds that finished)"
set xlabel "training FLOPs / (a)'s (4.47e+13)"
set ylabel 'final validation loss (nats/byte)'
set grid
set key top right
set offsets graph 0.03, graph 0.15, graph 0.05, graph 0.05
plot 'experiments/scaling/results/frontier-line.csv' skip 1 using 1:2 with linespoints lw 2 pt 7 lc rgb 'black' title 'best scratch model at each budget (sizes tried: 3 at 0.639x, 7 at 0.784x, 2 at 1.567x)',      'experiments/scaling/results/frontier.csv' skip 1 using (strcol(2) eq "scratch" ? $7 : NaN):8 with points pt 6 ps 1.4 lc rgb 'gray40' title 'scratch models',      'experiments/scaling/results/frontier.csv' skip 1 using (strcol(2) eq "grown" ? $7 : NaN):8:9 with yerrorbars pt 5 ps 1.6 lw 2 lc rgb 'red' title 'grown runs',      'experiments/scaling/results/frontier.csv' skip 1 using (strcol(2) eq "grown" ? $7 : NaN):8:(strcol(1)) with labels offset 1,-1 left font ',9' notitle
