; A quantized layer: C = relu(requant(A x B >> 6)) as int8. A is DIM x 2*DIM (stored transposed), B is
; 2*DIM x DIM. DRAM: default image; A^T at IN, B at IN + 2*DIM*DIM; C (int8, DIM x DIM) at OUT.
  load.sp sram=0 dram=IN stride=DIM rows=(2*DIM) cols=DIM
  load.sp sram=(2*DIM) dram=(IN+2*DIM*DIM) stride=DIM rows=(2*DIM) cols=DIM push_next
  gemm a=0 b=(2*DIM) c=0 k=(2*DIM) pop_prev
  vec.requant dst=0 src=0 rows=ROWS imm=6
  vec.relu dst=0 src=0 rows=ROWS push_next
  store.acc sram=0 dram=OUT stride=DIM rows=ROWS cols=COLS narrow pop_prev
  finish
