/* The MPI library's own all-reduce, for comparison with mlfw's process group
 * (crates/distributed/examples/allreduce_bench.rs): same sizes, repeats and median.
 *   mpicc -O2 bench/mpi_allreduce.c -o /tmp/mpi_allreduce && mpirun -np 2 /tmp/mpi_allreduce */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) printf("%10s  %12s  %10s\n", "bytes", "latency us", "GB/s");
  for (long bytes = 1024; bytes <= (64L << 20); bytes *= 4) {
    long n = bytes / 4;
    long reps = 200L * 1024 * 1024 / bytes;
    if (reps < 5) reps = 5;
    if (reps > 1000) reps = 1000;
    float *in = malloc(bytes), *out = malloc(bytes);
    for (long i = 0; i < n; i++) in[i] = 1.0f;
    for (int i = 0; i < 3; i++) MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    double *t = malloc(reps * sizeof(double));
    for (long r = 0; r < reps; r++) {
      double t0 = MPI_Wtime();
      MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      t[r] = MPI_Wtime() - t0;
    }
    qsort(t, reps, sizeof(double), cmp);
    if (rank == 0) printf("%10ld  %12.1f  %10.2f\n", bytes, t[reps / 2] * 1e6, bytes / t[reps / 2] / 1e9);
    free(in); free(out); free(t);
  }
  MPI_Finalize();
  return 0;
}
