/* kvmpager SDK entry stub. The VMM enters every vCPU here at CPL 3 with rdi = vCPU index,
 * rsi = vCPU count, rdx = RAM size. Align the stack for the SysV ABI and call the C runtime,
 * which runs main() on vCPU 0 and the worker loop on the others; it never returns. */
    .section .text._start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    xor %ebp, %ebp
    and $-16, %rsp
    call __kvmpager_sdk_start
    ud2
    .size _start, . - _start
    .section .note.GNU-stack, "", @progbits
