/* Native hot path of the recorder: Unicorn code and memory hooks that append fixed-width
 * event records to chunked column buffers. Python drains full chunks on another thread and
 * turns them into Arrow record batches, so no Python runs per instruction or per access.
 *
 * Threading: the emulator thread (inside uc_emu_start) is the only producer; one drain
 * thread is the only consumer. Full chunks travel through a small queue; when it holds
 * `max_pending` chunks the producer waits, which bounds memory however long the run. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicorn/unicorn.h>

#define SOURCE_KERNEL 2

typedef struct chunk {
    /* access columns */
    uint64_t *acc_step, *acc_rip, *acc_addr, *acc_value, *acc_value_hi;
    uint32_t *acc_size;
    uint8_t *acc_write, *acc_source, *acc_has_value;
    uint64_t n_acc, cap_acc;
    /* rsp-change columns */
    uint64_t *rsp_step, *rsp_rip, *rsp_old, *rsp_new;
    uint8_t *rsp_cause;
    uint64_t n_rsp, cap_rsp;
    uint64_t first_step, last_step;
    struct chunk *next;
} chunk;

/* Per-instruction facts, computed once per address by the Python classifier (capstone):
 * bits 0-1 source of reads, 2-3 source of writes, 4-7 RSP cause, 8 may change RSP.
 * Bits 9-12 name what Linux does where Unicorn would differ (tracer/classify.py). */
#define F_READ_SOURCE(f) ((f) & 3)
#define F_WRITE_SOURCE(f) (((f) >> 2) & 3)
#define F_RSP_CAUSE(f) (((f) >> 4) & 15)
#define F_MAY_CHANGE_RSP (1u << 8)
#define F_PRIVILEGED (1u << 9) /* raises #GP at CPL 3; Unicorn would just run it */
#define F_INVALID (1u << 10)   /* raises #UD on the CPU; Unicorn may run it (lock mov, VEX) */
#define F_DEBUG_TRAP (1u << 11) /* int1 (icebp): #DB, SIGTRAP; Unicorn calls it invalid */
#define F_ALIGNED (1u << 12)   /* its memory operand must be aligned (SSE): Unicorn never checks */
/* Set by rep_string_flags, here, for the recorder and the replay stepper alike. */
#define F_REP_STRING (1u << 13) /* a rep/repe/repne string instruction */
#define F_REP_ECX (1u << 14)   /* ... with an address-size prefix: its count is ECX */
#define F_FAULTS (F_PRIVILEGED | F_INVALID | F_DEBUG_TRAP)
/* The classifier knows the RSP change from the instruction alone (push, pop, call, ret):
 * bits 16-23 hold it as a signed byte, and no register read is needed to see it. */
#define F_RSP_DELTA (1u << 15)
#define F_RSP_DELTA_OF(f) ((int64_t)(int8_t)(((f) >> 16) & 0xFF))
/* What block mode may predict about an instruction's accesses (tracer/classify.py
 * access_flags): it makes none, or exactly one of 1 << bits 26-27 bytes. */
#define F_NO_MEMORY (1u << 24)
#define F_ONE_ACCESS (1u << 25)
#define F_ONE_SIZE(f) (1u << (((f) >> 26) & 3))
/* Set by us, not the classifier: the bytes at this address were written since it was
 * classified (self-modifying code), so classify it again before using its flags. */
#define F_STALE (1u << 31)

/* Why the hooks stopped the run (vm_stop_reason; tracer/event_stream.py NativeStopCode). */
#define STOP_NONE 0
#define STOP_MAX_STEPS 1
#define STOP_REQUESTED 2 /* vm_request_stop: a limit or the user; Python knows which */
#define STOP_FAULT 3     /* a fault the hooks raise before the instruction (FAULT_*) */

/* Faults the recorder raises itself, before the instruction runs (vm_stop_fault); the
 * Python names are tracer.interrupts.NativeFault. */
#define FAULT_NONE 0
#define FAULT_PRIVILEGED 1
#define FAULT_INVALID 2
#define FAULT_DEBUG_TRAP 3
#define FAULT_MISALIGNED 4

/* The memory operand of an F_ALIGNED instruction, as the classifier decoded it: the
 * effective address is seg_base + (disp + base + index * scale), cut to 32 bits when the
 * instruction has an address-size prefix. Registers are UC_X86_REG_* ids, 0 for none. */
typedef struct {
    uint64_t disp;
    int32_t base, index, seg_base;
    uint32_t scale, align, write, addr32;
} mem_operand;

typedef uint32_t (*classify_fn)(uint64_t rip, const uint8_t *code, uint32_t len,
                                mem_operand *op);

/* Whether the instruction is a rep-prefixed string instruction (F3 or F2 before movs,
 * cmps, stos, lods, scas, ins or outs), and whether an address-size prefix makes its count
 * ECX. The CPU single-steps such an instruction one iteration at a time, and when the
 * count runs out the instruction is complete. */
static uint32_t rep_string_flags(const uint8_t *code, uint32_t len) {
    int rep = 0, a32 = 0;
    for (uint32_t i = 0; i < len; i++) {
        uint8_t b = code[i];
        if (b == 0xF2 || b == 0xF3) { rep = 1; continue; }
        if (b == 0x67) { a32 = 1; continue; }
        if (b == 0x66 || b == 0xF0 || b == 0x2E || b == 0x36 || b == 0x3E || b == 0x26 ||
            b == 0x64 || b == 0x65 || (b >= 0x40 && b <= 0x4F))
            continue;  /* other legacy prefixes and REX */
        if (rep && ((b >= 0xA4 && b <= 0xA7) || (b >= 0xAA && b <= 0xAF) ||
                    (b >= 0x6C && b <= 0x6F)))
            return F_REP_STRING | (a32 ? F_REP_ECX : 0);
        return 0;
    }
    return 0;
}

/* QEMU runs a rep string instruction as one translated "instruction" per iteration and
 * then once more to find the count exhausted; the CPU has no such step (a debugger's
 * stepi goes from the last iteration to the next instruction). True for that extra entry:
 * the hook fires again at the same rep instruction and its count is zero. */
static inline int rep_exhausted(uc_engine *uc, uint32_t flags) {
    uint64_t rcx = 0;
    uc_reg_read(uc, UC_X86_REG_RCX, &rcx);
    if (flags & F_REP_ECX) rcx &= 0xFFFFFFFFull;
    return rcx == 0;
}

/* True when the operand's effective address breaks its alignment; *addr gets it. */
static int misaligned(uc_engine *uc, const mem_operand *op, uint64_t *addr) {
    uint64_t ea = op->disp, v;
    if (op->base) { v = 0; uc_reg_read(uc, op->base, &v); ea += v; }
    if (op->index) { v = 0; uc_reg_read(uc, op->index, &v); ea += v * op->scale; }
    if (op->addr32) ea &= 0xFFFFFFFFull;
    if (op->seg_base) { v = 0; uc_reg_read(uc, op->seg_base, &v); ea += v; }
    *addr = ea;
    return op->align && (ea & (op->align - 1)) != 0;
}

typedef struct {
    uint64_t *key, *count;
    uint32_t *flags;
    mem_operand *ops;          /* only meaningful for F_ALIGNED entries */
    uint64_t cap, used;
    uint64_t code_lo, code_hi; /* the bytes of every classified instruction lie in here */
    uint64_t *pages;           /* set of page numbers holding classified code (+1; 0 = empty) */
    uint64_t pages_cap, pages_used;
} count_table;

static int page_set_has(const count_table *t, uint64_t page) {
    uint64_t mask = t->pages_cap - 1, i = (page * 0x9E3779B97F4A7C15ull) >> 32 & mask;
    while (t->pages[i]) {
        if (t->pages[i] == page + 1) return 1;
        i = (i + 1) & mask;
    }
    return 0;
}

static void page_set_add(count_table *t, uint64_t page) {
    if (page_set_has(t, page)) return;
    if ((t->pages_used + 1) * 2 > t->pages_cap) {
        uint64_t *old = t->pages, old_cap = t->pages_cap;
        t->pages_cap *= 2;
        t->pages = calloc(t->pages_cap, 8);
        if (!t->pages) abort();
        t->pages_used = 0;
        for (uint64_t j = 0; j < old_cap; j++)
            if (old[j]) page_set_add(t, old[j] - 1);
        free(old);
    }
    uint64_t mask = t->pages_cap - 1, i = (page * 0x9E3779B97F4A7C15ull) >> 32 & mask;
    while (t->pages[i]) i = (i + 1) & mask;
    t->pages[i] = page + 1;
    t->pages_used++;
}

struct fast;
struct fblock;

typedef struct recorder {
    uc_engine *uc;
    uc_hook h_code, h_read, h_write;
    uint64_t step;          /* number of instructions started so far */
    uint64_t cur_step, cur_rip;
    uint32_t cur_flags;
    classify_fn classify;
    uint64_t last_rsp;
    uint64_t max_steps;     /* 0 = unlimited */
    volatile int stop_requested;
    int stop_reason;        /* STOP_* */
    uint64_t stop_rip;
    int stop_fault;         /* FAULT_* when stop_reason is STOP_FAULT */
    uint64_t stop_address;  /* the misaligned operand's address (FAULT_MISALIGNED) */
    int stop_write;         /* ... and whether the instruction would have stored to it */
    /* Linux's [stack] VMA is [stack_start, top) and grows down on touch, page by page, as
     * far as stack_floor (RLIMIT_STACK). Unicorn maps the whole reservation, so growing
     * costs nothing; an access in [stack_floor, stack_start) is a growth, kept here (step,
     * new start) until the recorder collects it. */
    uint64_t stack_floor, stack_start;
    uint64_t *grow_step, *grow_start;
    uint64_t n_grow, cap_grow;
    chunk *cur;
    uint64_t cap_acc, cap_rsp;
    /* queue of full chunks */
    pthread_mutex_t mu;
    pthread_cond_t cv_nonempty, cv_space;
    chunk *q_head, *q_tail;
    int q_len, max_pending, closed;
    chunk *spare;           /* drained chunks kept for reuse: no calloc/free per rotation */
    int n_spare;
    count_table exec;
    uint64_t total_acc, total_rsp;
    /* Totals for meta.json, so that `trace info` never has to scan the event tables:
     * access rows by [source][is_write], and the lowest RSP the run reached. */
    uint64_t n_by_kind[4][2];
    uint64_t lowest_rsp;
    /* Block mode (vm_new_blocks): steps are counted per translated block by the fast step
     * counter `f`, and no code hook runs outside its exact path. `blk` is the counted block
     * executing now (NULL between blocks and on the exact path), `cursor` the index of the
     * instruction the last access came from, `settled` how many of its instructions have
     * their RSP changes recorded. `pending_rsp` holds the flags of the last instruction the
     * exact path ran, whose RSP change is noted when the next one starts. */
    struct fast *f;
    struct fblock *blk;
    uint64_t blk_base;
    uint32_t cursor, settled;
    int32_t predict_next;   /* the instruction the next access comes from, or -1: read RIP */
    uint32_t pending_rsp;
    uint64_t misattributed;  /* accesses whose RIP was no instruction of `blk` (a bug) */
    int merged;              /* the exec counts were gathered into f->runs (at the end) */
    uint64_t final_steps;    /* steps started, fixed when a cut-short block was closed */
} recorder;

static void *xcalloc(size_t n, size_t s) {
    void *p = calloc(n ? n : 1, s);
    if (!p) abort();
    return p;
}

static chunk *chunk_new(uint64_t cap_acc, uint64_t cap_rsp) {
    chunk *c = xcalloc(1, sizeof(chunk));
    c->cap_acc = cap_acc;
    c->cap_rsp = cap_rsp;
    c->acc_step = xcalloc(cap_acc, 8);
    c->acc_rip = xcalloc(cap_acc, 8);
    c->acc_addr = xcalloc(cap_acc, 8);
    c->acc_value = xcalloc(cap_acc, 8);
    c->acc_value_hi = xcalloc(cap_acc, 8);
    c->acc_size = xcalloc(cap_acc, 4);
    c->acc_write = xcalloc(cap_acc, 1);
    c->acc_source = xcalloc(cap_acc, 1);
    c->acc_has_value = xcalloc(cap_acc, 1);
    c->rsp_step = xcalloc(cap_rsp, 8);
    c->rsp_rip = xcalloc(cap_rsp, 8);
    c->rsp_old = xcalloc(cap_rsp, 8);
    c->rsp_new = xcalloc(cap_rsp, 8);
    c->rsp_cause = xcalloc(cap_rsp, 1);
    return c;
}

void vm_chunk_free(chunk *c) {
    if (!c) return;
    free(c->acc_step); free(c->acc_rip); free(c->acc_addr); free(c->acc_value);
    free(c->acc_value_hi); free(c->acc_size); free(c->acc_write); free(c->acc_source);
    free(c->acc_has_value);
    free(c->rsp_step); free(c->rsp_rip); free(c->rsp_old); free(c->rsp_new);
    free(c->rsp_cause);
    free(c);
}

static uint64_t steps_now(recorder *r);

/* Hand the current chunk to the drain thread and start a new one. Called only at an
 * instruction boundary, so one instruction's accesses never straddle two chunks. */
static void rotate(recorder *r) {
    chunk *c = r->cur;
    if (c->n_acc == 0 && c->n_rsp == 0) return;
    c->last_step = steps_now(r);
    pthread_mutex_lock(&r->mu);
    while (r->q_len >= r->max_pending && !r->closed)
        pthread_cond_wait(&r->cv_space, &r->mu);
    c->next = NULL;
    if (r->q_tail) r->q_tail->next = c; else r->q_head = c;
    r->q_tail = c;
    r->q_len++;
    pthread_cond_signal(&r->cv_nonempty);
    chunk *fresh = r->spare;
    if (fresh) {
        r->spare = fresh->next;
        r->n_spare--;
    }
    pthread_mutex_unlock(&r->mu);
    if (fresh) {
        fresh->n_acc = fresh->n_rsp = 0;
        fresh->next = NULL;
    } else {
        fresh = chunk_new(r->cap_acc, r->cap_rsp);
    }
    r->cur = fresh;
    r->cur->first_step = steps_now(r);
}

static void count_grow(count_table *t);

/* Reads the bytes of the instruction at `rip`: 16 when they are mapped (a decoder needs
 * no more), else the `size` Unicorn decoded. Returns how many were read. */
static uint32_t read_code(uc_engine *uc, uint64_t rip, uint32_t size, uint8_t code[16]) {
    if (uc_mem_read(uc, rip, code, 16) == UC_ERR_OK) return 16;
    uint32_t len = size > 16 ? 16 : size;
    memset(code, 0, 16);
    uc_mem_read(uc, rip, code, len);
    return len;
}

/* Counts one execution of `key`; returns its flags, asking the classifier the first time.
 * For an F_ALIGNED instruction, *op gets its memory operand. */
static inline uint32_t count_add(count_table *t, uint64_t key, uc_engine *uc, uint32_t size,
                                 classify_fn classify, mem_operand *op) {
    uint64_t mask = t->cap - 1;
    uint64_t i = (key * 0x9E3779B97F4A7C15ull) >> 20 & mask;
    for (;;) {
        if (t->count[i] == 0 || (t->key[i] == key && (t->flags[i] & F_STALE))) {
            uint8_t code[16];
            uint32_t len = read_code(uc, key, size, code);
            mem_operand decoded = {0};
            uint32_t flags = classify ? classify(key, code, len, &decoded) : F_MAY_CHANGE_RSP;
            flags |= rep_string_flags(code, len);
            if (flags & F_ALIGNED) *op = decoded;
            if (t->count[i]) {  /* rewritten code: same address, new instruction */
                t->count[i]++;
                t->flags[i] = flags;
                t->ops[i] = decoded;
                return flags;
            }
            t->key[i] = key;
            t->count[i] = 1;
            t->flags[i] = flags;
            t->ops[i] = decoded;
            if (key < t->code_lo) t->code_lo = key;
            if (key + 16 > t->code_hi) t->code_hi = key + 16;
            page_set_add(t, key >> 12);
            page_set_add(t, (key + 15) >> 12);
            if (++t->used * 2 > t->cap) count_grow(t);
            return flags;
        }
        if (t->key[i] == key) {
            t->count[i]++;
            if (t->flags[i] & F_ALIGNED) *op = t->ops[i];
            return t->flags[i];
        }
        i = (i + 1) & mask;
    }
}

/* A store into bytes of classified instructions: mark them for classification again. Rare
 * (self-modifying code), so a scan of the table is fine. */
static void invalidate_code(count_table *t, uint64_t addr, uint64_t size) {
    for (uint64_t i = 0; i < t->cap; i++) {
        if (t->count[i] && t->key[i] < addr + size && t->key[i] + 16 > addr)
            t->flags[i] |= F_STALE;
    }
}

static void count_grow(count_table *t) {
    count_table old = *t;
    t->cap = old.cap * 2;
    t->used = 0;
    t->key = xcalloc(t->cap, 8);
    t->count = xcalloc(t->cap, 8);
    t->flags = xcalloc(t->cap, 4);
    t->ops = xcalloc(t->cap, sizeof(mem_operand));
    for (uint64_t i = 0; i < old.cap; i++) {
        if (old.count[i]) {
            uint64_t mask = t->cap - 1;
            uint64_t j = (old.key[i] * 0x9E3779B97F4A7C15ull) >> 20 & mask;
            while (t->count[j]) j = (j + 1) & mask;
            t->key[j] = old.key[i];
            t->count[j] = old.count[i];
            t->flags[j] = old.flags[i];
            t->ops[j] = old.ops[i];
            t->used++;
        }
    }
    free(old.key);
    free(old.count);
    free(old.flags);
    free(old.ops);
}

static inline void note_rsp(recorder *r, uint64_t rsp) {
    if (rsp == r->last_rsp) return;
    chunk *c = r->cur;
    uint64_t i = c->n_rsp++;
    c->rsp_step[i] = r->cur_step;
    c->rsp_rip[i] = r->cur_rip;
    c->rsp_old[i] = r->last_rsp;
    c->rsp_new[i] = rsp;
    c->rsp_cause[i] = (uint8_t)F_RSP_CAUSE(r->cur_flags);
    r->last_rsp = rsp;
    if (rsp < r->lowest_rsp) r->lowest_rsp = rsp;
    r->total_rsp++;
}

/* Which fault, if any, the CPU raises for this instruction before it does anything. */
static int fault_before(recorder *r, uint32_t flags, const mem_operand *op) {
    if (flags & F_PRIVILEGED) return FAULT_PRIVILEGED;
    if (flags & F_INVALID) return FAULT_INVALID;
    if (flags & F_DEBUG_TRAP) return FAULT_DEBUG_TRAP;
    if ((flags & F_ALIGNED) && misaligned(r->uc, op, &r->stop_address)) {
        r->stop_write = (int)op->write;
        return FAULT_MISALIGNED;
    }
    return FAULT_NONE;
}

/* What both per-instruction paths (hook_code, block mode's exact path hook_rec_code) do as an
 * instruction starts: room in the chunk, the instruction's flags (classified on first
 * sight, counted), and the faults the CPU raises before it runs. Returns 0 when the run
 * stops before it (stop_* set), else 1 with *flags. */
static inline int start_insn(recorder *r, uc_engine *uc, uint64_t address, uint32_t size,
                             uint32_t *flags_out) {
    chunk *c = r->cur;
    /* Rotate with room to spare: one instruction makes at most a few dozen accesses
     * (fxsave writes 512 bytes as 8-byte pieces). */
    if (c->n_acc + 128 > c->cap_acc || c->n_rsp + 4 > c->cap_rsp) rotate(r);
    mem_operand op;
    uint32_t flags = count_add(&r->exec, address, uc, size, r->classify, &op);
    if (flags & (F_FAULTS | F_ALIGNED)) {
        int fault = fault_before(r, flags, &op);
        if (fault != FAULT_NONE) {
            /* Stop before it executes: the fault is precise, the instruction does nothing,
             * and Linux delivers the signal (tracer/interrupts.py says which). */
            r->stop_reason = STOP_FAULT;
            r->stop_fault = fault;
            r->stop_rip = address;
            r->cur_flags = 0;
            uc_emu_stop(uc);
            return 0;
        }
    }
    *flags_out = flags;
    return 1;
}

static void hook_code(uc_engine *uc, uint64_t address, uint32_t size, void *user) {
    recorder *r = user;
    uint64_t rsp;
    /* An RSP change seen now was made by the previous instruction; only instructions the
     * classifier marked as able to write RSP are checked (a register read costs ~3 ns). */
    if (r->step > 0 && (r->cur_flags & F_MAY_CHANGE_RSP)) {
        if (r->cur_flags & F_RSP_DELTA)
            rsp = r->last_rsp + (uint64_t)F_RSP_DELTA_OF(r->cur_flags);
        else
            uc_reg_read(uc, UC_X86_REG_RSP, &rsp);
        note_rsp(r, rsp);
    }
    /* QEMU's extra entry into a finished rep instruction is not a step (rep_exhausted). */
    if ((r->cur_flags & F_REP_STRING) && address == r->cur_rip && rep_exhausted(uc, r->cur_flags))
        return;
    if ((r->max_steps && r->step >= r->max_steps) || r->stop_requested) {
        r->stop_reason = r->stop_requested ? STOP_REQUESTED : STOP_MAX_STEPS;
        uc_emu_stop(uc);
        return;
    }
    uint32_t flags;
    if (!start_insn(r, uc, address, size, &flags)) return;
    r->cur_step = r->step++;
    r->cur_rip = address;
    r->cur_flags = flags;
}

/* An access below Linux's [stack] but inside its RLIMIT_STACK reservation: the page fault
 * expands the stack down to its page (expand_stack; no check against RSP since Linux 4.20),
 * for the CPU and for the kernel's copy_to_user/copy_from_user alike. */
static void grow_stack(recorder *r, uint64_t addr) {
    if (r->n_grow == r->cap_grow) {
        r->cap_grow = r->cap_grow ? r->cap_grow * 2 : 64;
        r->grow_step = realloc(r->grow_step, r->cap_grow * 8);
        r->grow_start = realloc(r->grow_start, r->cap_grow * 8);
        if (!r->grow_step || !r->grow_start) abort();
    }
    r->stack_start = addr & ~0xFFFull;
    r->grow_step[r->n_grow] = r->cur_step;
    r->grow_start[r->n_grow] = r->stack_start;
    r->n_grow++;
}

/* Inlined: the memory hooks call it once per access (kernel and has_value fold away). */
static inline __attribute__((always_inline)) void append_access(recorder *r, uint64_t addr, uint32_t size, int write,
                                 uint64_t value, int has_value, int kernel) {
    /* One compare: true only for addresses in [stack_floor, stack_start). */
    if (addr - r->stack_floor < r->stack_start - r->stack_floor) grow_stack(r, addr);
    uint8_t source = kernel ? SOURCE_KERNEL
                            : (uint8_t)(write ? F_WRITE_SOURCE(r->cur_flags)
                                              : F_READ_SOURCE(r->cur_flags));
    chunk *c = r->cur;
    uint64_t n = c->n_acc;
    /* Cheap range test first; then only stores into a page that holds code pay a scan. */
    if (write && addr < r->exec.code_hi && addr + size > r->exec.code_lo &&
        (page_set_has(&r->exec, addr >> 12) || page_set_has(&r->exec, (addr + size - 1) >> 12)))
        invalidate_code(&r->exec, addr, size);
    /* QEMU splits a 16-byte SSE load or store into two 8-byte halves; the architecture
     * defines one 16-byte access, so the halves are joined again. */
    if (!kernel && n > 0 && size == 8 && c->acc_size[n - 1] == 8 &&
        c->acc_step[n - 1] == r->cur_step && c->acc_write[n - 1] == write &&
        c->acc_source[n - 1] != SOURCE_KERNEL && c->acc_addr[n - 1] + 8 == addr) {
        c->acc_size[n - 1] = 16;
        c->acc_value_hi[n - 1] = value;
        return;
    }
    if (n >= c->cap_acc) { rotate(r); c = r->cur; n = 0; }
    c->acc_step[n] = r->cur_step;
    c->acc_rip[n] = r->cur_rip;
    c->acc_addr[n] = addr;
    c->acc_size[n] = size;
    c->acc_write[n] = (uint8_t)write;
    c->acc_source[n] = source;
    c->acc_value[n] = value;
    c->acc_value_hi[n] = 0;
    c->acc_has_value[n] = (uint8_t)has_value;
    c->n_acc = n + 1;
    r->total_acc++;
    r->n_by_kind[source & 3][write ? 1 : 0]++;
}

static void hook_mem(uc_engine *uc, uc_mem_type type, uint64_t address, int size,
                     int64_t value, void *user) {
    (void)uc;
    recorder *r = user;
    append_access(r, address, (uint32_t)size, type == UC_MEM_WRITE, (uint64_t)value, 1, 0);
}

recorder *vm_new(uc_engine *uc, uint64_t cap_acc, uint64_t cap_rsp, int max_pending,
                 uint64_t max_steps, uint64_t initial_rsp, classify_fn classify) {
    recorder *r = xcalloc(1, sizeof(recorder));
    r->classify = classify;
    r->uc = uc;
    r->cap_acc = cap_acc;
    r->cap_rsp = cap_rsp;
    r->max_pending = max_pending;
    r->max_steps = max_steps;
    r->last_rsp = initial_rsp;
    r->lowest_rsp = initial_rsp;
    r->cur = chunk_new(cap_acc, cap_rsp);
    r->exec.cap = 1 << 12;
    r->exec.code_lo = UINT64_MAX;
    r->exec.code_hi = 0;
    r->exec.pages_cap = 64;
    r->exec.pages = xcalloc(r->exec.pages_cap, 8);
    r->exec.key = xcalloc(r->exec.cap, 8);
    r->exec.count = xcalloc(r->exec.cap, 8);
    r->exec.flags = xcalloc(r->exec.cap, 4);
    r->exec.ops = xcalloc(r->exec.cap, sizeof(mem_operand));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv_nonempty, NULL);
    pthread_cond_init(&r->cv_space, NULL);
    return r;
}

int vm_install(recorder *r) {
    uc_err e;
    e = uc_hook_add(r->uc, &r->h_code, UC_HOOK_CODE, (void *)hook_code, r, 1, 0);
    if (e) return (int)e;
    e = uc_hook_add(r->uc, &r->h_read, UC_HOOK_MEM_READ_AFTER, (void *)hook_mem, r, 1, 0);
    if (e) return (int)e;
    e = uc_hook_add(r->uc, &r->h_write, UC_HOOK_MEM_WRITE, (void *)hook_mem, r, 1, 0);
    return (int)e;
}

void fr_uninstall(struct fast *f);

int vm_uninstall(recorder *r) {
    if (r->f) fr_uninstall(r->f);
    else uc_hook_del(r->uc, r->h_code);
    uc_hook_del(r->uc, r->h_read);
    uc_hook_del(r->uc, r->h_write);
    return 0;
}

/* Called from the syscall layer: the kernel side of a syscall touching guest memory. */
static void sync_current(recorder *r);

void vm_append_kernel(recorder *r, uint64_t addr, uint64_t size, int write, uint64_t value,
                      int has_value) {
    sync_current(r);
    append_access(r, addr, (uint32_t)size, write, value, has_value, 1);
}

/* A fault is precise on x86: the faulting instruction has no architectural effect. Unicorn
 * calls the write hook before it checks the page, so the attempted store (and any access
 * the instruction made before it) would otherwise be recorded as if it had happened. */
void vm_discard_current(recorder *r) {
    sync_current(r);
    chunk *c = r->cur;
    while (c->n_acc > 0 && c->acc_step[c->n_acc - 1] == r->cur_step &&
           c->acc_source[c->n_acc - 1] != SOURCE_KERNEL) {
        c->n_acc--;
        r->total_acc--;
        r->n_by_kind[c->acc_source[c->n_acc] & 3][c->acc_write[c->n_acc] ? 1 : 0]--;
    }
}

/* At a syscall and after emulation ends: catch an RSP change made by the instruction
 * before (the last one of the run, or one the classifier did not flag). */
static void settle_block(recorder *r, uint32_t upto, int have, uint64_t rsp);

void vm_check_rsp(recorder *r, uint64_t rsp) {
    if (r->blk) {
        /* Block mode: the instructions before this one in its block have run. */
        sync_current(r);
        settle_block(r, r->cursor, 1, rsp);
    }
    if (steps_now(r) > 0) note_rsp(r, rsp);
}

/* The stack as Linux has it at the start: its VMA starts at `start` and may grow down to
 * `floor`. Without this call no growth is tracked. */
void vm_set_stack(recorder *r, uint64_t floor, uint64_t start) {
    r->stack_floor = floor;
    r->stack_start = start;
}

/* Hands over the stack growths since the last call (step, new start), oldest first. */
uint64_t vm_take_growth(recorder *r, uint64_t *steps, uint64_t *starts, uint64_t cap) {
    uint64_t n = r->n_grow < cap ? r->n_grow : cap;
    memcpy(steps, r->grow_step, n * 8);
    memcpy(starts, r->grow_start, n * 8);
    memmove(r->grow_step, r->grow_step + n, (r->n_grow - n) * 8);
    memmove(r->grow_start, r->grow_start + n, (r->n_grow - n) * 8);
    r->n_grow -= n;
    return n;
}
uint64_t vm_growth_pending(recorder *r) { return r->n_grow; }

static int64_t block_index(const recorder *r, uint64_t rip);

uint64_t vm_step(recorder *r) {
    sync_current(r);
    return r->cur_step;
}

/* Steps started so far: in block mode a counted block was counted whole at its entry, so
 * one cut short at RIP (a fault) counts up to and with the instruction there. */
uint64_t vm_steps(recorder *r) {
    if (!r->f) return r->step;
    if (r->final_steps) return r->final_steps;
    if (r->blk) {
        uint64_t rip = 0;
        uc_reg_read(r->uc, UC_X86_REG_RIP, &rip);
        int64_t k = block_index(r, rip);
        if (k >= 0) return r->blk_base + (uint64_t)k + 1;
    }
    return steps_now(r);
}
int vm_stop_reason(recorder *r) { return r->stop_reason; }
uint64_t vm_stop_rip(recorder *r) { return r->stop_rip; }
int vm_stop_fault(recorder *r) { return r->stop_fault; }
uint64_t vm_stop_address(recorder *r) { return r->stop_address; }
int vm_stop_write(recorder *r) { return r->stop_write; }
void fr_request_stop(struct fast *f);

void vm_request_stop(recorder *r) {
    r->stop_requested = 1;
    if (r->f) fr_request_stop(r->f);
}
uint64_t vm_total_accesses(recorder *r) { return r->total_acc; }
uint64_t vm_total_rsp(recorder *r) { return r->total_rsp; }
uint64_t vm_count_by_kind(recorder *r, int source, int write) {
    return r->n_by_kind[source & 3][write ? 1 : 0];
}
uint64_t vm_lowest_rsp(recorder *r) { return r->lowest_rsp; }

/* Flush the partial chunk and mark the queue closed: the drain thread ends when empty. */
static void count_partial_block(recorder *r);

void vm_close(recorder *r) {
    count_partial_block(r);
    rotate(r);
    pthread_mutex_lock(&r->mu);
    r->closed = 1;
    pthread_cond_broadcast(&r->cv_nonempty);
    pthread_cond_broadcast(&r->cv_space);
    pthread_mutex_unlock(&r->mu);
}


/* The drain thread is done with a chunk: keep a few for reuse, free the rest. */
void vm_release(recorder *r, chunk *c) {
    pthread_mutex_lock(&r->mu);
    if (r->n_spare < 2) {
        c->next = r->spare;
        r->spare = c;
        r->n_spare++;
        c = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    vm_chunk_free(c);
}

/* Blocks until a full chunk is available; NULL once closed and drained. */
chunk *vm_take(recorder *r) {
    pthread_mutex_lock(&r->mu);
    while (!r->q_head && !r->closed) pthread_cond_wait(&r->cv_nonempty, &r->mu);
    chunk *c = r->q_head;
    if (c) {
        r->q_head = c->next;
        if (!r->q_head) r->q_tail = NULL;
        r->q_len--;
        pthread_cond_signal(&r->cv_space);
    }
    pthread_mutex_unlock(&r->mu);
    return c;
}

/* The stored layout of a step, RIP or RSP column (tracer/format/layout.py, which defines
 * it and whose `_split` this must equal): the row-to-row differences modulo 2^64, the first
 * from 0, as a sign-extended low int32 half and the int32 rest. Run by the drain thread. */
void vm_split(const uint64_t *values, uint64_t n, int32_t *low, int32_t *high) {
    uint64_t prev = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t d = values[i] - prev;
        int32_t lo = (int32_t)(uint32_t)d;
        low[i] = lo;
        high[i] = (int32_t)(uint32_t)((d - (uint64_t)(int64_t)lo) >> 32);
        prev = values[i];
    }
}

/* Arrow's bit layout (validity bitmaps, booleans: bit i of byte i/8, least significant
   first) for n flag bytes, so that the drain thread needs no array library; `bits` holds
   (n + 7) / 8 bytes. Returns how many flags were set. */
uint64_t vm_pack_bits(const uint8_t *flags, uint64_t n, uint8_t *bits) {
    uint64_t set = 0;
    memset(bits, 0, (n + 7) / 8);
    for (uint64_t i = 0; i < n; i++) {
        if (flags[i]) {
            bits[i >> 3] |= (uint8_t)(1u << (i & 7));
            set++;
        }
    }
    return set;
}

/* value_hi's validity bitmap: the 16-byte accesses an instruction made (the kernel's keep no
   value). Returns how many there are. */
uint64_t vm_wide_bits(const uint32_t *size, const uint8_t *source, uint64_t n, uint8_t kernel,
                      uint8_t *bits) {
    uint64_t set = 0;
    memset(bits, 0, (n + 7) / 8);
    for (uint64_t i = 0; i < n; i++) {
        if (size[i] == 16 && source[i] != kernel) {
            bits[i >> 3] |= (uint8_t)(1u << (i & 7));
            set++;
        }
    }
    return set;
}

/* The pages of [buf, buf + size) that hold a non-zero byte: their indices (size / page of
   room in `out`), and how many. `size` is a multiple of `page` (a memory region's), itself
   a multiple of 8. For the keyframes, which store no all-zero page. */
uint64_t vm_nonzero_pages(const uint8_t *buf, uint64_t size, uint64_t page, uint64_t *out) {
    uint64_t n = 0;
    for (uint64_t k = 0; k < size / page; k++) {
        const uint64_t *words = (const uint64_t *)(buf + k * page);
        uint64_t any = 0;
        for (uint64_t w = 0; w < page / 8; w++) any |= words[w];
        if (any) out[n++] = k;
    }
    return n;
}

/* Export the per-RIP execution counts; returns how many entries were written. */
static uint64_t merge_exec_counts(recorder *r);
static uint64_t export_merged(recorder *r, uint64_t *keys, uint64_t *counts, uint64_t cap);

uint64_t vm_exec_count_size(recorder *r) { return r->f ? merge_exec_counts(r) : r->exec.used; }
uint64_t vm_exec_counts(recorder *r, uint64_t *keys, uint64_t *counts, uint64_t cap) {
    if (r->f) return export_merged(r, keys, counts, cap);
    uint64_t n = 0;
    for (uint64_t i = 0; i < r->exec.cap && n < cap; i++) {
        if (r->exec.count[i]) {
            keys[n] = r->exec.key[i];
            counts[n] = r->exec.count[i];
            n++;
        }
    }
    return n;
}

static void free_blocks(recorder *r);

void vm_free(recorder *r) {
    free_blocks(r);
    chunk *c = r->q_head;
    while (c) { chunk *n = c->next; vm_chunk_free(c); c = n; }
    for (c = r->spare; c;) { chunk *n = c->next; vm_chunk_free(c); c = n; }
    vm_chunk_free(r->cur);
    free(r->exec.key);
    free(r->exec.count);
    free(r->exec.flags);
    free(r->exec.ops);
    free(r->exec.pages);
    free(r->grow_step);
    free(r->grow_start);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv_nonempty);
    pthread_cond_destroy(&r->cv_space);
    free(r);
}

/* -- the replay's step counter ------------------------------------------------------------
 * Re-executing a trace without the recorder's hooks still has to stop at step N as the
 * recorder numbered it: Unicorn's own `count` also counts QEMU's extra entry into a finished
 * rep instruction (rep_exhausted). This code hook counts steps by the recorder's rule and
 * stops before step `limit`. Only an instruction entered again at the same address (a rep
 * iteration, or a jump to itself) pays more than a compare. */
typedef struct stepper {
    uc_engine *uc;
    uc_hook hook;
    uint64_t steps, limit;   /* limit 0: never stop */
    uint64_t prev;           /* address of the last step, valid when steps > 0 */
    uint64_t rep_addr;       /* the last address decoded for rep_string_flags, and its flags */
    uint32_t rep_flags;
    int rep_valid;
} stepper;

static void hook_step(uc_engine *uc, uint64_t address, uint32_t size, void *user) {
    stepper *s = user;
    if (s->steps > 0 && address == s->prev) {
        if (!s->rep_valid || s->rep_addr != address) {
            uint8_t code[16];
            uint32_t len = read_code(uc, address, size, code);
            s->rep_flags = rep_string_flags(code, len);
            s->rep_addr = address;
            s->rep_valid = 1;
        }
        if ((s->rep_flags & F_REP_STRING) && rep_exhausted(uc, s->rep_flags)) return;
    }
    if (s->limit && s->steps >= s->limit) {
        uc_emu_stop(uc);
        return;
    }
    s->prev = address;
    s->steps++;
}

/* The caller owns the memory (vm_stepper_size bytes, zeroed) for as long as the engine
 * may run: the hook stays on the engine. */
uint64_t vm_stepper_size(void) { return sizeof(stepper); }
int vm_stepper_init(stepper *s, uc_engine *uc) {
    s->uc = uc;
    return (int)uc_hook_add(uc, &s->hook, UC_HOOK_CODE, (void *)hook_step, s, 1, 0);
}

/* Starts a new count: the next emu_start stops before its `limit`-th step (0: never). */
void vm_stepper_reset(stepper *s, uint64_t limit) {
    s->steps = 0;
    s->limit = limit;
}

uint64_t vm_stepper_steps(stepper *s) { return s->steps; }

/* -- the fast recorder's step counter (trace record --fast) --------------------------------
 * Numbers steps as `hook_code` does (one per instruction the CPU single-steps, each rep
 * iteration one, QEMU's extra entry into a finished rep instruction none) with a block hook
 * only: each translated block's instructions are decoded once (the `decode` callback) and
 * counted when the block is entered. Steps inside a block are its start step plus the
 * instruction's index, so an event at a known RIP (a syscall, a fault) gets its exact step.
 *
 * A block takes the exact path instead (a code hook on its pages, counting instruction by
 * instruction with the recorder's rules and stopping before a faulting one, as hook_code
 * does) when it holds an instruction the CPU faults on before running it (F_FAULTS,
 * F_ALIGNED), when its bytes are writable (self-modifying code: each instruction's bytes are
 * compared with those classified before it counts), when it would cross --max-steps, or
 * when it cannot be decoded. Switching a block to the exact path needs its cached
 * translation dropped, which Unicorn refuses while it runs: the hook stops the emulation
 * before the block (`fr_pending`) and the caller applies it and resumes. */
typedef uint32_t (*decode_fn)(uint64_t addr, const uint8_t *code, uint32_t len,
                              uint32_t *offsets, uint32_t *flags, uint32_t cap);

#define FB_MAX_INSNS 1024 /* QEMU puts at most 512 instructions in a block */
#define MODE_NONE 0       /* between blocks, or stopped at a block's entry */
#define MODE_FAST 1       /* in a block counted at its entry */
#define MODE_EXACT 2      /* in a block counted by the code hook */
#define PENDING_NONE 0
#define PENDING_EXACT 1    /* the block at pending_addr needs the code hook: fr_apply */
#define PENDING_KEYFRAME 2 /* at a block boundary past next_keyframe: take one, resume */

typedef struct fblock {
    uint64_t addr;
    uint32_t size;      /* 0: invalidated (rediscovered on its next entry) */
    uint32_t used;      /* the slot holds a block (even an invalidated one) */
    uint32_t n, exact, writable, last_flags;
    uint64_t last_addr; /* of its last instruction */
    uint32_t *offsets;  /* n instruction offsets from addr, then (`iflags`) n flag words */
    uint32_t *iflags;   /* each instruction's classifier flags, rep_string_flags added */
    int32_t *predict;   /* [k + 1]: the instruction the access after one of k's comes from,
                         * when known without RIP (recorder.c hook_rec_mem); else -1 */
    uint32_t *rsp_at;   /* the instructions that may change RSP, in order */
    uint32_t n_rsp_at;
    uint64_t runs;      /* block mode: complete runs not yet added to the exec counts */
} fblock;

/* Execution counts by address, without classification (block mode's per-block runs). */
typedef struct {
    uint64_t *key, *count;
    uint64_t cap, used;
} plain_counts;

static void plain_add(plain_counts *t, uint64_t key, uint64_t n);

typedef struct {
    uint64_t addr;
    uint32_t used, flags, len;
    uint8_t code[16];
    mem_operand op;
} finsn;

typedef struct fast {
    uc_engine *uc;
    uc_hook h_block;
    /* Block mode of the full recorder: what the exact path's code hook is (hook_fast_code
     * by default), blocks with more than one RSP change not known from the instruction
     * alone take the exact path (`rsp_exact`), and runs are counted (`runs`). */
    void *code_cb, *code_user;
    int rsp_exact;
    plain_counts *runs;
    fblock *cur_block;     /* the counted fast block executing now, else NULL */
    decode_fn decode;
    classify_fn classify;
    fblock *blocks;
    uint64_t bcap, bused;
    finsn *insns;
    uint64_t icap, iused;
    uint64_t *hooked;      /* pages that have the exact code hook, and its handles */
    uc_hook *hook_ids;
    uint64_t nhooked, caphooked;
    uint32_t **retired;    /* offsets of rediscovered blocks: a pointer may still be current */
    uint64_t nretired, capretired;
    uint64_t steps;        /* steps started, a fast block's counted whole at its entry */
    uint64_t blk_base;     /* the step of the current fast block's first instruction */
    uint64_t cur_step;     /* exact mode: the step being executed */
    int mode;
    uint64_t cur_addr;
    uint32_t cur_n, cur_writable;
    uint32_t *cur_offsets;
    uint64_t last_rip, prev_last_rip;   /* the last step's address, and the one before */
    uint32_t last_flags, prev_last_flags;
    uint64_t max_steps, next_keyframe;  /* 0: none */
    volatile int stop_requested;
    int stop_reason, stop_fault, stop_write;
    uint64_t stop_rip, stop_address;
    int pending;
    uint64_t pending_addr;
    uint32_t pending_size;
    uint8_t *code;         /* a block's bytes, for the decoder */
    uint32_t code_cap;
} fast;

static inline uint64_t fhash(uint64_t key) { return (key * 0x9E3779B97F4A7C15ull) >> 20; }

static fblock *fblock_slot(fast *f, uint64_t addr) {
    uint64_t mask = f->bcap - 1, i = fhash(addr) & mask;
    while (f->blocks[i].used && f->blocks[i].addr != addr) i = (i + 1) & mask;
    return &f->blocks[i];
}

static void fblock_grow(fast *f) {
    fblock *old = f->blocks;
    uint64_t old_cap = f->bcap;
    f->bcap *= 2;
    f->blocks = xcalloc(f->bcap, sizeof(fblock));
    for (uint64_t j = 0; j < old_cap; j++)
        if (old[j].used) *fblock_slot(f, old[j].addr) = old[j];
    free(old);
}

static finsn *finsn_slot(fast *f, uint64_t addr) {
    uint64_t mask = f->icap - 1, i = fhash(addr) & mask;
    while (f->insns[i].used && f->insns[i].addr != addr) i = (i + 1) & mask;
    return &f->insns[i];
}

static void finsn_grow(fast *f) {
    finsn *old = f->insns;
    uint64_t old_cap = f->icap;
    f->icap *= 2;
    f->insns = xcalloc(f->icap, sizeof(finsn));
    for (uint64_t j = 0; j < old_cap; j++)
        if (old[j].used) *finsn_slot(f, old[j].addr) = old[j];
    free(old);
}

static int page_hooked(const fast *f, uint64_t page) {
    for (uint64_t i = 0; i < f->nhooked; i++)
        if (f->hooked[i] == page) return 1;
    return 0;
}

static int pages_hooked(const fast *f, uint64_t addr, uint32_t size) {
    for (uint64_t p = addr >> 12; p <= (addr + (size ? size : 1) - 1) >> 12; p++)
        if (!page_hooked(f, p)) return 0;
    return 1;
}

/* Whether any byte of [addr, addr + size) may be written by the guest. */
static int code_writable(uc_engine *uc, uint64_t addr, uint32_t size) {
    uc_mem_region *regions = NULL;
    uint32_t count = 0;
    int writable = 0;
    if (uc_mem_regions(uc, &regions, &count) != UC_ERR_OK) return 1;
    for (uint32_t i = 0; i < count; i++)
        if (regions[i].begin < addr + size && regions[i].end >= addr &&
            (regions[i].perms & UC_PROT_WRITE))
            writable = 1;
    uc_free(regions);
    return writable;
}

static void fast_stop(fast *f, int reason) {
    f->stop_reason = reason;
    f->mode = MODE_NONE;
    uc_emu_stop(f->uc);
}

static void ask_exact(fast *f, uint64_t addr, uint32_t size) {
    f->pending = PENDING_EXACT;
    f->pending_addr = addr;
    f->pending_size = size;
    f->mode = MODE_NONE;
    uc_emu_stop(f->uc);
}

/* Decodes a new (or rewritten) block into its slot; 0 when the run stops for fr_apply. */
static int discover(fast *f, uint64_t addr, uint32_t size) {
    static uint32_t offs[FB_MAX_INSNS], flags[FB_MAX_INSNS];
    if (size > f->code_cap) {
        free(f->code);
        f->code_cap = size * 2;
        f->code = xcalloc(f->code_cap, 1);
    }
    uint32_t n = 0;
    if (uc_mem_read(f->uc, addr, f->code, size) == UC_ERR_OK && f->decode)
        n = f->decode(addr, f->code, size, offs, flags, FB_MAX_INSNS);
    int exact = n == 0 || n > FB_MAX_INSNS;
    if (exact) n = 0;
    uint32_t last_flags = 0, unknown_rsp = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t avail = size - offs[i] < 16 ? size - offs[i] : 16;
        uint32_t rep = rep_string_flags(f->code + offs[i], avail);
        if ((flags[i] & (F_FAULTS | F_ALIGNED)) || ((rep & F_REP_STRING) && i != n - 1))
            exact = 1;
        last_flags = rep;
        flags[i] |= rep;
        if ((flags[i] & F_MAY_CHANGE_RSP) && !(flags[i] & F_RSP_DELTA)) unknown_rsp++;
    }
    /* Block mode reads RSP once, after the block: one RSP change that the instruction alone
     * does not tell (leave, mov rsp, ...) is found from it, two are not. */
    if (f->rsp_exact && unknown_rsp > 1) exact = 1;
    int writable = code_writable(f->uc, addr, size);
    exact |= writable;
    fblock *b = fblock_slot(f, addr);
    if (!b->used) {
        if ((f->bused + 1) * 2 > f->bcap) {
            fblock_grow(f);
            b = fblock_slot(f, addr);
        }
        f->bused++;
    } else if (b->offsets) {
        if (b->runs && f->runs) {
            for (uint32_t k = 0; k < b->n; k++) plain_add(f->runs, b->addr + b->offsets[k], b->runs);
        }
        b->runs = 0;
        if (f->nretired == f->capretired) {
            f->capretired = f->capretired ? f->capretired * 2 : 16;
            f->retired = realloc(f->retired, f->capretired * sizeof(uint32_t *));
            if (!f->retired) abort();
        }
        f->retired[f->nretired++] = b->offsets;
    }
    b->used = 1;
    b->addr = addr;
    b->size = size;
    b->n = n;
    b->exact = (uint32_t)exact;
    b->writable = (uint32_t)writable;
    b->last_flags = last_flags;
    b->last_addr = n ? addr + offs[n - 1] : addr;
    b->offsets = xcalloc(4 * (size_t)n + 1, 4);
    b->iflags = b->offsets + n;
    b->predict = (int32_t *)(b->iflags + n);
    b->rsp_at = (uint32_t *)(b->predict + n + 1);
    memcpy(b->offsets, offs, n * 4);
    memcpy(b->iflags, flags, n * 4);
    /* The access after one of instruction k's comes from the next instruction that may
     * access memory: known when that one makes exactly one access. */
    int32_t next = -1;
    b->predict[n] = -1;
    for (int64_t k = (int64_t)n - 1; k >= 0; k--) {
        if (!(flags[k] & F_NO_MEMORY)) next = (flags[k] & F_ONE_ACCESS) ? (int32_t)k : -1;
        b->predict[k] = next;
    }
    b->n_rsp_at = 0;
    for (uint32_t k = 0; k < n; k++)
        if (flags[k] & F_MAY_CHANGE_RSP) b->rsp_at[b->n_rsp_at++] = k;
    if (exact && !pages_hooked(f, addr, size)) {
        ask_exact(f, addr, size);
        return 0;
    }
    return 1;
}

static inline __attribute__((always_inline)) void hook_fast_block(uc_engine *uc, uint64_t addr,
                                                                 uint32_t size, void *user) {
    fast *f = user;
    f->cur_block = NULL;
    fblock *b = fblock_slot(f, addr);
    if (!b->used || b->size != size) {
        if (!discover(f, addr, size)) return;
        b = fblock_slot(f, addr);
    }
    if (b->exact) {
        f->mode = MODE_EXACT;
        f->cur_writable = b->writable;
        return;
    }
    /* QEMU's extra entry into a finished rep instruction (a block of its own) is no step. */
    if (b->n == 1 && (b->last_flags & F_REP_STRING) && f->last_rip == addr &&
        (f->last_flags & F_REP_STRING) && rep_exhausted(uc, f->last_flags)) {
        f->mode = MODE_FAST;
        f->cur_n = 0;
        f->blk_base = f->steps;
        return;
    }
    if (f->stop_requested) { fast_stop(f, STOP_REQUESTED); return; }
    if (f->max_steps && f->steps >= f->max_steps) { fast_stop(f, STOP_MAX_STEPS); return; }
    if (f->max_steps && f->steps + b->n > f->max_steps) {
        /* The limit falls inside this block: count it instruction by instruction. */
        b->exact = 1;
        if (!pages_hooked(f, addr, size)) { ask_exact(f, addr, size); return; }
        f->mode = MODE_EXACT;
        f->cur_writable = b->writable;
        return;
    }
    if (f->next_keyframe && f->steps >= f->next_keyframe) {
        f->pending = PENDING_KEYFRAME;
        f->mode = MODE_NONE;
        uc_emu_stop(uc);
        return;
    }
    f->mode = MODE_FAST;
    f->cur_block = b;
    f->cur_addr = addr;
    f->cur_n = b->n;
    f->cur_offsets = b->offsets;
    f->blk_base = f->steps;
    f->steps += b->n;
    f->prev_last_rip = f->last_rip;
    f->prev_last_flags = f->last_flags;
    f->last_rip = b->last_addr;
    f->last_flags = b->last_flags;
}

/* The flags of the instruction at `address`, classified once; in writable code its bytes
 * are compared with the classified ones each time (self-modifying code). */
static uint32_t fast_insn_flags(fast *f, uint64_t address, uint32_t size, mem_operand *op) {
    finsn *e = finsn_slot(f, address);
    if (e->used && e->len && !f->cur_writable) {
        *op = e->op;
        return e->flags;
    }
    uint8_t code[16];
    uint32_t len = read_code(f->uc, address, size, code);
    if (e->used && e->len == len && memcmp(e->code, code, len) == 0) {
        *op = e->op;
        return e->flags;
    }
    mem_operand decoded = {0};
    uint32_t flags = f->classify ? f->classify(address, code, len, &decoded) : F_MAY_CHANGE_RSP;
    flags |= rep_string_flags(code, len);
    if (!e->used) {
        if ((f->iused + 1) * 2 > f->icap) {
            finsn_grow(f);
            e = finsn_slot(f, address);
        }
        f->iused++;
    }
    e->used = 1;
    e->addr = address;
    e->flags = flags;
    e->len = len;
    memcpy(e->code, code, 16);
    e->op = decoded;
    *op = decoded;
    return flags;
}

/* The exact path: hook_code's counting, for the instructions of exact blocks only. */
static void hook_fast_code(uc_engine *uc, uint64_t address, uint32_t size, void *user) {
    fast *f = user;
    if (f->mode != MODE_EXACT) return;  /* a fast block on a hooked page: counted already */
    if ((f->last_flags & F_REP_STRING) && address == f->last_rip &&
        rep_exhausted(uc, f->last_flags))
        return;
    if ((f->max_steps && f->steps >= f->max_steps) || f->stop_requested) {
        f->stop_reason = f->stop_requested ? STOP_REQUESTED : STOP_MAX_STEPS;
        uc_emu_stop(uc);
        return;
    }
    if (f->next_keyframe && f->steps >= f->next_keyframe) {
        /* (Code that only runs on the exact path still gets its keyframes.) */
        f->pending = PENDING_KEYFRAME;
        f->mode = MODE_NONE;
        uc_emu_stop(uc);
        return;
    }
    mem_operand op;
    uint32_t flags = fast_insn_flags(f, address, size, &op);
    int fault = FAULT_NONE;
    if (flags & F_PRIVILEGED) fault = FAULT_PRIVILEGED;
    else if (flags & F_INVALID) fault = FAULT_INVALID;
    else if (flags & F_DEBUG_TRAP) fault = FAULT_DEBUG_TRAP;
    else if ((flags & F_ALIGNED) && misaligned(uc, &op, &f->stop_address)) {
        f->stop_write = (int)op.write;
        fault = FAULT_MISALIGNED;
    }
    if (fault != FAULT_NONE) {
        f->stop_reason = STOP_FAULT;
        f->stop_fault = fault;
        f->stop_rip = address;
        uc_emu_stop(uc);
        return;
    }
    f->prev_last_rip = f->last_rip;
    f->prev_last_flags = f->last_flags;
    f->cur_step = f->steps++;
    f->last_rip = address;
    f->last_flags = flags;
}

fast *fr_new(uc_engine *uc, uint64_t max_steps, decode_fn decode, classify_fn classify) {
    fast *f = xcalloc(1, sizeof(fast));
    f->uc = uc;
    f->max_steps = max_steps;
    f->decode = decode;
    f->classify = classify;
    f->bcap = 1 << 10;
    f->blocks = xcalloc(f->bcap, sizeof(fblock));
    f->icap = 1 << 8;
    f->insns = xcalloc(f->icap, sizeof(finsn));
    return f;
}

int fr_install(fast *f) {
    return (int)uc_hook_add(f->uc, &f->h_block, UC_HOOK_BLOCK, (void *)hook_fast_block, f, 1, 0);
}

/* After emu_start returned: puts the exact code hook on the pending block's pages and drops
 * their translations, so that the block is counted instruction by instruction. */
int fr_apply(fast *f) {
    if (f->pending == PENDING_EXACT) {
        uint64_t addr = f->pending_addr, size = f->pending_size ? f->pending_size : 1;
        for (uint64_t p = addr >> 12; p <= (addr + size - 1) >> 12; p++) {
            if (page_hooked(f, p)) continue;
            uc_hook h;
            uc_err e = uc_hook_add(f->uc, &h, UC_HOOK_CODE,
                                   f->code_cb ? f->code_cb : (void *)hook_fast_code,
                                   f->code_user ? f->code_user : (void *)f,
                                   p << 12, (p << 12) + 0xFFF);
            if (e) return (int)e;
            if (f->nhooked == f->caphooked) {
                f->caphooked = f->caphooked ? f->caphooked * 2 : 16;
                f->hooked = realloc(f->hooked, f->caphooked * 8);
                f->hook_ids = realloc(f->hook_ids, f->caphooked * sizeof(uc_hook));
                if (!f->hooked || !f->hook_ids) abort();
            }
            f->hook_ids[f->nhooked] = h;
            f->hooked[f->nhooked++] = p;
            uc_ctl_remove_cache(f->uc, p << 12, (p << 12) + 0x1000);
        }
    }
    f->pending = PENDING_NONE;
    return 0;
}

static int64_t cur_index(const fast *f, uint64_t rip) {
    if (f->mode != MODE_FAST || !f->cur_n || rip < f->cur_addr) return -1;
    uint64_t off = rip - f->cur_addr;
    for (uint32_t k = 0; k < f->cur_n; k++)
        if (f->cur_offsets[k] == off) return k;
    return -1;
}

/* The step of the instruction at `rip`, which is executing (a syscall, a fault): in a fast
 * block its index from the block's first step; a RIP past the block (a trap-like
 * interrupt reports the next instruction) is its last instruction. */
uint64_t fr_step_at(fast *f, uint64_t rip) {
    if (f->mode == MODE_EXACT) return f->cur_step;
    if (f->mode == MODE_FAST && f->cur_n) {
        int64_t k = cur_index(f, rip);
        return f->blk_base + (k >= 0 ? (uint64_t)k : f->cur_n - 1);
    }
    return f->steps ? f->steps - 1 : 0;
}

/* How many steps had started when the run stopped at `rip` (recorder.c's r->step): a fast
 * block was counted whole at its entry, so one cut short at `rip` counts up to it. */
uint64_t fr_started(fast *f, uint64_t rip) {
    int64_t k = cur_index(f, rip);
    return k >= 0 ? f->blk_base + (uint64_t)k + 1 : f->steps;
}

/* The instruction at `rip` stopped before it ran (its stack access grew the stack) and runs
 * again when the emulation resumes there: it is not counted yet. */
void fr_rewind(fast *f, uint64_t rip) {
    int64_t k = cur_index(f, rip);
    if (k >= 0) {
        f->steps = f->blk_base + (uint64_t)k;
        if (k > 0) {
            f->last_rip = f->cur_addr + f->cur_offsets[k - 1];
            f->last_flags = 0;  /* a rep instruction is always a block's last */
        } else {
            f->last_rip = f->prev_last_rip;
            f->last_flags = f->prev_last_flags;
        }
    } else if (f->mode == MODE_EXACT && f->steps > 0) {
        f->steps = f->cur_step;
        f->last_rip = f->prev_last_rip;
        f->last_flags = f->prev_last_flags;
    }
    f->mode = MODE_NONE;
}

/* The code in [start, end) may have changed (a region event): decode its blocks again. */
void fr_invalidate(fast *f, uint64_t start, uint64_t end) {
    for (uint64_t i = 0; i < f->bcap; i++) {
        fblock *b = &f->blocks[i];
        if (b->used && b->addr < end && b->addr + b->size > start) b->size = 0;
    }
    for (uint64_t i = 0; i < f->icap; i++) {
        finsn *e = &f->insns[i];
        if (e->used && e->addr < end && e->addr + 16 > start) e->len = 0;
    }
}

uint64_t fr_steps(fast *f) { return f->steps; }
int fr_pending(fast *f) { return f->pending; }
void fr_set_next_keyframe(fast *f, uint64_t step) { f->next_keyframe = step; }
void fr_request_stop(fast *f) { f->stop_requested = 1; }
int fr_stop_reason(fast *f) { return f->stop_reason; }
uint64_t fr_stop_rip(fast *f) { return f->stop_rip; }
int fr_stop_fault(fast *f) { return f->stop_fault; }
uint64_t fr_stop_address(fast *f) { return f->stop_address; }
int fr_stop_write(fast *f) { return f->stop_write; }
uint64_t fr_exact_pages(fast *f) { return f->nhooked; }

/* Takes the hooks off the engine (before fr_free, while the engine lives). */
void fr_uninstall(fast *f) {
    uc_hook_del(f->uc, f->h_block);
    for (uint64_t i = 0; i < f->nhooked; i++) uc_hook_del(f->uc, f->hook_ids[i]);
}

void fr_free(fast *f) {
    free(f->hook_ids);
    for (uint64_t i = 0; i < f->bcap; i++) free(f->blocks[i].offsets);
    for (uint64_t i = 0; i < f->nretired; i++) free(f->retired[i]);
    free(f->retired);
    free(f->blocks);
    free(f->insns);
    free(f->hooked);
    free(f->code);
    free(f);
}

/* -- the full recorder on blocks (vm_new_blocks) -------------------------------------------
 * The per-instruction code hook costs a helper call and a hash lookup per instruction. In
 * block mode the fast step counter above numbers the steps per translated block, and the
 * events are put together from what is known once per block:
 * - an access gets its instruction from RIP, which Unicorn restores before every memory hook
 *   (the block's decoded offsets turn it into the step);
 * - RSP changes are written when the block is done: push, pop, call and ret by the change
 *   the classifier knows (F_RSP_DELTA), and at most one other (leave, mov rsp, and rsp ...)
 *   from RSP read after the block, less the known changes after it; a block with two such
 *   instructions takes the exact path;
 * - execution counts are counted per block run and spread over its instructions at the end.
 * The exact path (faulting candidates, self-modifying code, the block crossing --max-steps,
 * blocks with two unknown RSP changes) runs hook_rec_code, hook_code's counting per
 * instruction. The tables are row for row what the code-hook recorder writes. */

static void plain_grow(plain_counts *t);

static void plain_add(plain_counts *t, uint64_t key, uint64_t n) {
    if (!n) return;
    uint64_t mask = t->cap - 1, i = (key * 0x9E3779B97F4A7C15ull) >> 20 & mask;
    while (t->count[i]) {
        if (t->key[i] == key) { t->count[i] += n; return; }
        i = (i + 1) & mask;
    }
    t->key[i] = key;
    t->count[i] = n;
    if (++t->used * 2 > t->cap) plain_grow(t);
}

static void plain_init(plain_counts *t, uint64_t cap) {
    t->cap = cap;
    t->used = 0;
    t->key = xcalloc(cap, 8);
    t->count = xcalloc(cap, 8);
}

static void plain_grow(plain_counts *t) {
    plain_counts old = *t;
    plain_init(t, old.cap * 2);
    for (uint64_t i = 0; i < old.cap; i++)
        if (old.count[i]) plain_add(t, old.key[i], old.count[i]);
    free(old.key);
    free(old.count);
}

static uint64_t steps_now(recorder *r) { return r->f ? r->f->steps : r->step; }

/* One RSP change row, for the instruction at (step, rip) with these flags. */
static void emit_rsp(recorder *r, uint64_t step, uint64_t rip, uint32_t flags, uint64_t rsp) {
    if (rsp == r->last_rsp) return;
    chunk *c = r->cur;
    uint64_t i = c->n_rsp++;
    c->rsp_step[i] = step;
    c->rsp_rip[i] = rip;
    c->rsp_old[i] = r->last_rsp;
    c->rsp_new[i] = rsp;
    c->rsp_cause[i] = (uint8_t)F_RSP_CAUSE(flags);
    r->last_rsp = rsp;
    if (rsp < r->lowest_rsp) r->lowest_rsp = rsp;
    r->total_rsp++;
}

/* Makes instruction k of the executing block the current one (cur_step, cur_rip, flags). */
static inline void enter_insn(recorder *r, uint32_t k) {
    fblock *b = r->blk;
    r->cursor = k;
    r->cur_step = r->blk_base + k;
    r->cur_rip = b->addr + b->offsets[k];
    r->cur_flags = b->iflags[k];
}

/* The index in the executing block of the instruction at `rip`; -1 when none is there. */
static int64_t block_index(const recorder *r, uint64_t rip) {
    const fblock *b = r->blk;
    if (rip < b->addr) return -1;
    uint64_t off = rip - b->addr;
    for (uint32_t k = r->cursor; k < b->n; k++)
        if (b->offsets[k] == off) return k;
    for (uint32_t k = 0; k < r->cursor; k++)
        if (b->offsets[k] == off) return k;
    return -1;
}

/* Points cur_* at the instruction executing now (at a syscall, a fault, the end): by RIP in
 * a counted block; a RIP past the block (an interrupt reports the next instruction, a
 * fetch fault the target) is its last instruction, as fr_step_at has it. */
static void sync_current(recorder *r) {
    if (!r->blk) return;
    r->predict_next = -1;  /* (a syscall or a fault: no prediction past it) */
    uint64_t rip = 0;
    uc_reg_read(r->uc, UC_X86_REG_RIP, &rip);
    int64_t k = block_index(r, rip);
    enter_insn(r, k >= 0 ? (uint32_t)k : r->blk->n - 1);
}

/* Writes the RSP changes of the executing block's instructions [settled, upto): all of them
 * ran, and `rsp` (read now when `have` is 0) is RSP after the last of them. */
static void settle_block(recorder *r, uint32_t upto, int have, uint64_t rsp) {
    fblock *b = r->blk;
    for (uint32_t i = 0; i < b->n_rsp_at; i++) {
        uint32_t k = b->rsp_at[i];
        if (k < r->settled) continue;
        if (k >= upto) break;
        uint32_t fl = b->iflags[k];
        uint64_t value;
        if (fl & F_RSP_DELTA) {
            value = r->last_rsp + (uint64_t)F_RSP_DELTA_OF(fl);
        } else {
            if (!have) { uc_reg_read(r->uc, UC_X86_REG_RSP, &rsp); have = 1; }
            value = rsp;  /* the one unknown change: RSP now, less the known ones after it */
            for (uint32_t j = i + 1; j < b->n_rsp_at && b->rsp_at[j] < upto; j++)
                value -= (uint64_t)F_RSP_DELTA_OF(b->iflags[b->rsp_at[j]]);
        }
        emit_rsp(r, r->blk_base + k, b->addr + b->offsets[k], fl, value);
    }
    if (upto > r->settled) r->settled = upto;
}

/* The last instruction the exact path ran: its RSP change, as hook_code notes it. */
static void note_pending_rsp(recorder *r) {
    uint32_t fl = r->pending_rsp;
    if (!(fl & F_MAY_CHANGE_RSP)) return;
    r->pending_rsp = 0;
    uint64_t rsp;
    if (fl & F_RSP_DELTA)
        rsp = r->last_rsp + (uint64_t)F_RSP_DELTA_OF(fl);
    else
        uc_reg_read(r->uc, UC_X86_REG_RSP, &rsp);
    note_rsp(r, rsp);
}

/* The block before ran to its end: its RSP changes and its run. */
static void finish_block(recorder *r) {
    fblock *b = r->blk;
    if (!b) return;
    settle_block(r, b->n, 0, 0);
    b->runs++;
    enter_insn(r, b->n - 1);
    r->blk = NULL;
}

static void hook_rec_block(uc_engine *uc, uint64_t addr, uint32_t size, void *user) {
    recorder *r = user;
    fast *f = r->f;
    if (r->blk) finish_block(r);
    else note_pending_rsp(r);
    hook_fast_block(uc, addr, size, f);
    if (f->stop_reason) r->stop_reason = f->stop_reason;
    fblock *b = f->cur_block;
    if (!b || !b->n) return;
    chunk *c = r->cur;
    if (c->n_acc + 128 > c->cap_acc || c->n_rsp + b->n + 4 > c->cap_rsp) rotate(r);
    r->blk = b;
    r->blk_base = f->blk_base;
    r->settled = 0;
    r->predict_next = b->predict[0];
    enter_insn(r, 0);
}

/* Makes instruction k the current one for the accesses that follow. */
static inline void next_insn(recorder *r, uint32_t k) {
    enter_insn(r, k);
    /* A new instruction: the chunk may rotate here, never inside one. */
    if (r->cur->n_acc + 128 > r->cur->cap_acc) rotate(r);
}

static void hook_rec_mem(uc_engine *uc, uc_mem_type type, uint64_t address, int size,
                         int64_t value, void *user) {
    recorder *r = user;
    fblock *b = r->blk;
    if (b) {
        int32_t k = r->predict_next;
        if (k >= 0 && (uint32_t)size == F_ONE_SIZE(b->iflags[k])) {
            /* The instructions before k make no access and k makes exactly this one. */
            if ((uint32_t)k != r->cursor) next_insn(r, (uint32_t)k);
            r->predict_next = b->predict[k + 1];
        } else {
            if (r->cursor + 1 < b->n) {
                uint64_t rip;
                uc_reg_read(uc, UC_X86_REG_RIP, &rip);
                if (rip != r->cur_rip) {
                    int64_t j = block_index(r, rip);
                    if (j < 0) r->misattributed++;
                    else next_insn(r, (uint32_t)j);
                }
            }
            uint32_t fl = r->cur_flags;
            r->predict_next = ((fl & F_ONE_ACCESS) && (uint32_t)size == F_ONE_SIZE(fl))
                                  ? b->predict[r->cursor + 1] : -1;
        }
    }
    append_access(r, address, (uint32_t)size, type == UC_MEM_WRITE, (uint64_t)value, 1, 0);
}

/* The exact path: hook_code's work for one instruction, with the fast counter's steps. */
static void hook_rec_code(uc_engine *uc, uint64_t address, uint32_t size, void *user) {
    recorder *r = user;
    fast *f = r->f;
    if (f->mode != MODE_EXACT) return;  /* a counted block on a hooked page */
    note_pending_rsp(r);
    if ((f->last_flags & F_REP_STRING) && address == f->last_rip &&
        rep_exhausted(uc, f->last_flags))
        return;
    if ((f->max_steps && f->steps >= f->max_steps) || f->stop_requested) {
        f->stop_reason = r->stop_reason = f->stop_requested ? STOP_REQUESTED : STOP_MAX_STEPS;
        uc_emu_stop(uc);
        return;
    }
    uint32_t flags;
    if (!start_insn(r, uc, address, size, &flags)) return;
    f->prev_last_rip = f->last_rip;
    f->prev_last_flags = f->last_flags;
    f->cur_step = f->steps++;
    f->last_rip = address;
    f->last_flags = flags;
    r->cur_step = f->cur_step;
    r->cur_rip = address;
    r->cur_flags = flags;
    r->pending_rsp = flags;
}

recorder *vm_new_blocks(uc_engine *uc, uint64_t cap_acc, uint64_t cap_rsp, int max_pending,
                        uint64_t max_steps, uint64_t initial_rsp, classify_fn classify,
                        decode_fn decode) {
    recorder *r = vm_new(uc, cap_acc, cap_rsp, max_pending, max_steps, initial_rsp, classify);
    fast *f = fr_new(uc, max_steps, decode, classify);
    f->code_cb = (void *)hook_rec_code;
    f->code_user = r;
    f->rsp_exact = 1;
    f->runs = xcalloc(1, sizeof(plain_counts));
    plain_init(f->runs, 1 << 10);
    r->f = f;
    return r;
}

int vm_install_blocks(recorder *r) {
    uc_err e;
    e = uc_hook_add(r->uc, &r->f->h_block, UC_HOOK_BLOCK, (void *)hook_rec_block, r, 1, 0);
    if (e) return (int)e;
    e = uc_hook_add(r->uc, &r->h_read, UC_HOOK_MEM_READ_AFTER, (void *)hook_rec_mem, r, 1, 0);
    if (e) return (int)e;
    e = uc_hook_add(r->uc, &r->h_write, UC_HOOK_MEM_WRITE, (void *)hook_rec_mem, r, 1, 0);
    return (int)e;
}

fast *vm_fast(recorder *r) { return r->f; }
uint64_t vm_misattributed(recorder *r) { return r->misattributed; }


/* At the end: a block cut short (a fault, the exit) ran its instructions up to the current
 * one, which started (a step, counted as hook_code counts it). */
static void count_partial_block(recorder *r) {
    if (!r->f || !r->blk) return;
    r->final_steps = vm_steps(r);
    sync_current(r);
    for (uint32_t k = 0; k <= r->cursor; k++)
        plain_add(r->f->runs, r->blk->addr + r->blk->offsets[k], 1);
    r->blk = NULL;
}

/* The execution counts of the run: block runs spread over their instructions, plus the
 * exact path's counts. Returns how many addresses. */
static uint64_t merge_exec_counts(recorder *r) {
    fast *f = r->f;
    if (r->merged) return f->runs->used;
    r->merged = 1;
    for (uint64_t i = 0; i < f->bcap; i++) {
        fblock *b = &f->blocks[i];
        if (!b->used || !b->runs) continue;
        for (uint32_t k = 0; k < b->n; k++) plain_add(f->runs, b->addr + b->offsets[k], b->runs);
        b->runs = 0;
    }
    for (uint64_t i = 0; i < r->exec.cap; i++) {
        if (r->exec.count[i]) plain_add(f->runs, r->exec.key[i], r->exec.count[i]);
    }
    return f->runs->used;
}

static uint64_t export_merged(recorder *r, uint64_t *keys, uint64_t *counts, uint64_t cap) {
    plain_counts *t = r->f->runs;
    uint64_t n = 0;
    for (uint64_t i = 0; i < t->cap && n < cap; i++) {
        if (t->count[i]) {
            keys[n] = t->key[i];
            counts[n] = t->count[i];
            n++;
        }
    }
    return n;
}

static void free_blocks(recorder *r) {
    fast *f = r->f;
    if (!f) return;
    free(f->runs->key);
    free(f->runs->count);
    free(f->runs);
    fr_free(f);
    r->f = NULL;
}
