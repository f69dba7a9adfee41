; C = A x B with M = N = K = 2*DIM in 2x2 output tiles of DIM x DIM, double-buffered: tile i loads its
; operands into scratchpad half i % 2 and accumulates into accumulator half i % 2 while tile i - 1
; computes and tile i - 2 is stored. DRAM (default image): A^T (K x M, row-major int8) at IN,
; B (K x N, row-major int8) at IN + 4096, C (M x N, row-major int32) at OUT.
.equ K (2*DIM)
.equ N (2*DIM)
.equ BADDR (IN+4096)
; tile (m=0, n=0)
  load.sp sram=0 dram=IN stride=N rows=K cols=DIM
  load.sp sram=K dram=BADDR stride=N rows=K cols=DIM push_next
  gemm a=0 b=K c=0 k=K pop_prev push_prev push_next
  store.acc sram=0 dram=OUT stride=(4*N) rows=DIM cols=DIM pop_prev push_prev
; tile (m=0, n=1)
  load.sp sram=SP_HALF dram=IN stride=N rows=K cols=DIM
  load.sp sram=(SP_HALF+K) dram=(BADDR+DIM) stride=N rows=K cols=DIM push_next
  gemm a=SP_HALF b=(SP_HALF+K) c=ACC_HALF k=K pop_prev push_prev push_next
  store.acc sram=ACC_HALF dram=(OUT+4*DIM) stride=(4*N) rows=DIM cols=DIM pop_prev push_prev
; tile (m=1, n=0): waits for tile 0's gemm before reusing half 0, and for its store before the gemm
  load.sp sram=0 dram=(IN+DIM) stride=N rows=K cols=DIM pop_next
  load.sp sram=K dram=BADDR stride=N rows=K cols=DIM push_next
  gemm a=0 b=K c=0 k=K pop_prev pop_next push_prev push_next
  store.acc sram=0 dram=(OUT+4*N*DIM) stride=(4*N) rows=DIM cols=DIM pop_prev push_prev
; tile (m=1, n=1)
  load.sp sram=SP_HALF dram=(IN+DIM) stride=N rows=K cols=DIM pop_next
  load.sp sram=(SP_HALF+K) dram=(BADDR+DIM) stride=N rows=K cols=DIM push_next
  gemm a=SP_HALF b=(SP_HALF+K) c=ACC_HALF k=K pop_prev pop_next push_prev push_next
  store.acc sram=ACC_HALF dram=(OUT+4*N*DIM+4*DIM) stride=(4*N) rows=DIM cols=DIM pop_prev push_prev
  finish
