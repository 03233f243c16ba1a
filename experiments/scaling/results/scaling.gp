set terminal pngcairo size 1900,760 font ',10' noenhanced
set output 'experiments/scaling/results/scaling.png'
set datafile separator ','
set multiplot layout 1,2 title "TokenFormer on fortunes: validation loss vs training FLOPs\n(dashed: (a)'s final validation loss 1.4638; dotted: 0.8 x (a)'s FLOPs)"
set xlabel "cumulative training FLOPs / (a)'s (4.47e+13)"
set ylabel 'validation loss (nats/byte)'
set grid
unset key
set yrange [1.4:2.8]
set xrange [0:1.32]
set arrow 1 from 0.8, graph 0 to 0.8, graph 1 nohead dt 3 lw 2 lc rgb 'gray40'
plot 'experiments/scaling/results/large.csv' using 3:4 with lines lw 3 dt 1 title 'large', 'experiments/scaling/results/small.csv' using 3:4 with lines lw 3 dt 1 title 'small', 'experiments/scaling/results/official-zero-follow_n-1500.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-zero-follow_n-1500', 'experiments/scaling/results/official-zero-pinned-1500.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-zero-pinned-1500', 'experiments/scaling/results/official-random-follow_n-1500.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-random-follow_n-1500', 'experiments/scaling/results/official-random-pinned-1500.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-random-pinned-1500', 'experiments/scaling/results/official-random-follow_n-3000.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-random-follow_n-3000', 'experiments/scaling/results/recipe.csv' using 3:4 with lines lw 3 dt 1 title 'recipe', 'experiments/scaling/results/official-zero-follow_n-3000.csv' using 3:4 with lines lw 1.5 dt 2 title 'official-zero-follow_n-3000', 'experiments/scaling/results/official-zero-pinned-3000.csv' using 3:4 with lines lw 1.5 dt 2 title 'official-zero-pinned-3000', 'experiments/scaling/results/official-random-pinned-3000.csv' using 3:4 with lines lw 1.5 dt 2 title 'official-random-pinned-3000', 1.463762 with lines dt 2 lw 2 lc rgb 'black' notitle
set yrange [1.44:1.80]
set xrange [0.25:1.32]
set key outside right top
plot 'experiments/scaling/results/large.csv' using 3:4 with lines lw 3 dt 1 title 'large', 'experiments/scaling/results/small.csv' using 3:4 with lines lw 3 dt 1 title 'small', 'experiments/scaling/results/official-zero-follow_n-1500.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-zero-follow_n-1500', 'experiments/scaling/results/official-zero-pinned-1500.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-zero-pinned-1500', 'experiments/scaling/results/official-random-follow_n-1500.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-random-follow_n-1500', 'experiments/scaling/results/official-random-pinned-1500.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-random-pinned-1500', 'experiments/scaling/results/official-random-follow_n-3000.csv' using 3:4 with lines lw 1.5 dt 1 title 'official-random-follow_n-3000', 'experiments/scaling/results/recipe.csv' using 3:4 with lines lw 3 dt 1 title 'recipe', 'experiments/scaling/results/official-zero-follow_n-3000.csv' using 3:4 with lines lw 1.5 dt 2 title 'official-zero-follow_n-3000', 'experiments/scaling/results/official-zero-pinned-3000.csv' using 3:4 with lines lw 1.5 dt 2 title 'official-zero-pinned-3000', 'experiments/scaling/results/official-random-pinned-3000.csv' using 3:4 with lines lw 1.5 dt 2 title 'official-random-pinned-3000', 1.463762 with lines dt 2 lw 2 lc rgb 'black' notitle
unset multiplot
