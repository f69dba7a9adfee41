; Every integer vector operation, with a second row operand and with an immediate.
; DRAM: default image; accumulator rows 0..2*DIM hold random int32 values.
  load.acc sram=0 dram=IN stride=(4*DIM) rows=(2*DIM) cols=DIM push_next
  vec.add  dst=(2*DIM)  src=0 src2=DIM rows=DIM pop_prev
  vec.sub  dst=(3*DIM)  src=0 src2=DIM rows=DIM
  vec.mul  dst=(4*DIM)  src=0 src2=DIM rows=DIM
  vec.max  dst=(5*DIM)  src=0 src2=DIM rows=DIM
  vec.min  dst=(6*DIM)  src=0 src2=DIM rows=DIM
  vec.add  dst=(7*DIM)  src=0 rows=DIM use_imm imm=-123456
  vec.mul  dst=(8*DIM)  src=0 rows=DIM use_imm imm=77
  vec.max  dst=(9*DIM)  src=0 rows=DIM use_imm imm=0
  vec.shr  dst=(10*DIM) src=0 rows=DIM imm=7
  vec.shr  dst=(11*DIM) src=0 rows=DIM imm=0
  vec.shl  dst=(12*DIM) src=0 rows=DIM imm=5
  vec.relu dst=(13*DIM) src=0 rows=DIM
  vec.requant dst=(14*DIM) src=0 rows=DIM imm=24
  vec.requant dst=(15*DIM) src=0 rows=DIM imm=31
  vec.sub  dst=0 src=0 src2=DIM rows=(2*DIM) push_next       ; in place
  store.acc sram=0 dram=OUT stride=(4*DIM) rows=(16*DIM) cols=DIM pop_prev
  finish
