//! Command queue: wrap, CMD_SYNC completion signals, CERROR_ILL / CERROR_ABT and recovery, PROD
//! garbage.

use super::*;

#[test]
fn queue_wraps_many_times() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    let before = rig.smmu.stats().commands;
    let n = 3 * (1u64 << CMDQ_LOG2) + 17;
    for _ in 0..n {
        rig.cmd(0x30, 0); // TLBI_NSNH_ALL
    }
    rig.sync();
    let s = rig.smmu.stats();
    assert_eq!(s.commands - before, n + 1);
    // Linux's view: CONS == PROD, wrap bit included.
    assert_eq!(rig.r32(CMDQ_CONS), rig.r32(CMDQ_PROD));
    assert_eq!(
        s.commands_by_name["CMD_TLBI_NSNH_ALL"],
        n + 1,
        "+1 from bring-up"
    );
}

#[test]
fn cmd_sync_signals() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    // SIG_IRQ to a non-RAM address: an MSI to the sink with MSIData.
    rig.cmd(0x46 | 1 << 12 | 0xbeef << 32, 0xfee0_3000);
    assert!(rig.irq.0.lock().unwrap().contains(&(0xfee0_3000, 0xbeef)));
    // SIG_NONE and SIG_SEV just complete; MSIAddr 0 sends nothing.
    let n = rig.irq.0.lock().unwrap().len();
    rig.cmd(0x46, 0);
    rig.cmd(0x46 | 2 << 12, 0);
    rig.cmd(0x46 | 1 << 12, 0);
    assert_eq!(rig.irq.0.lock().unwrap().len(), n);
    assert_eq!(rig.r32(CMDQ_CONS), rig.r32(CMDQ_PROD));
    // The RAM case (MSI polling) is what `Rig::sync` checks.
    rig.sync();
    assert!(rig.smmu.stats().cmd_syncs >= 5);
}

#[test]
fn illegal_command_stops_the_queue_until_acknowledged() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    let bad_at = rig.r32(CMDQ_PROD);
    rig.cmd(0x7f, 0); // no such opcode
    rig.cmd(0x30, 0);
    let cons = rig.r32(CMDQ_CONS);
    assert_eq!(cons >> 24 & 0x7f, CERROR_ILL);
    assert_eq!(cons & 0x1ff, bad_at, "CONS stays on the bad command");
    assert_eq!(rig.r32(GERROR) ^ rig.r32(GERRORN), GERROR_CMDQ_ERR);
    assert!(rig.irq.0.lock().unwrap().contains(&(GERROR_MSI, 0x41)));
    // More commands wait while the error is active.
    rig.cmd(0x30, 0);
    assert_eq!(rig.r32(CMDQ_CONS) & 0x1ff, bad_at);
    // Linux's arm_smmu_cmdq_skip_err: overwrite the bad command with a CMD_SYNC, then ack GERROR.
    let slot = CMDQ + u64::from(bad_at) * 16;
    rig.write_words(slot, &[0x46, 0]);
    rig.w32(GERRORN, rig.r32(GERROR));
    assert_eq!(rig.r32(CMDQ_CONS) & 0x1ff, rig.r32(CMDQ_PROD));
    // Unsupported features are illegal too: TLBI_EL2_ALL (no HYP), CMD_SYNC with CS = 3.
    for w0 in [0x20u64, 0x46 | 3 << 12, 0x41, 0x44] {
        rig.cmd(w0, 0);
        assert_eq!(rig.r32(CMDQ_CONS) >> 24 & 0x7f, CERROR_ILL, "{w0:#x}");
        let at = u64::from(rig.r32(CMDQ_CONS) & 0xff);
        rig.write_words(CMDQ + at * 16, &[0x46, 0]);
        rig.w32(GERRORN, rig.r32(GERROR));
    }
    assert_eq!(rig.smmu.stats().command_errors, 5);
}

#[test]
fn command_fetch_abort() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    rig.cr0(CR0_EVTQEN | CR0_SMMUEN);
    rig.w64(CMDQ_BASE, 0x9_0000_0000 | u64::from(CMDQ_LOG2));
    rig.w32(CMDQ_PROD, 0);
    rig.w32(CMDQ_CONS, 0);
    rig.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    rig.w32(CMDQ_PROD, 1);
    assert_eq!(rig.r32(CMDQ_CONS), CERROR_ABT << 24);
    assert_eq!(rig.r32(GERROR) ^ rig.r32(GERRORN), GERROR_CMDQ_ERR);
}

#[test]
fn prod_garbage_is_masked_and_bounded() {
    let rig = Rig::new(Smmuv3Config::default());
    rig.bringup(false);
    // Fill the whole queue with valid commands, then write PROD with every high bit set: only the
    // wrap + index bits count, so at most one lap runs.
    for i in 0..(1u64 << CMDQ_LOG2) {
        rig.write_words(CMDQ + i * 16, &[0x30, 0]);
    }
    let before = rig.smmu.stats().commands;
    let cons = rig.r32(CMDQ_CONS);
    rig.w32(CMDQ_PROD, 0xffff_fe00 | (cons ^ (1 << CMDQ_LOG2)));
    assert_eq!(
        rig.r32(CMDQ_PROD),
        cons ^ (1 << CMDQ_LOG2),
        "bits above WR dropped"
    );
    assert_eq!(
        rig.smmu.stats().commands - before,
        1 << CMDQ_LOG2,
        "a full lap"
    );
    assert_eq!(rig.r32(CMDQ_CONS), rig.r32(CMDQ_PROD));
    // A LOG2SIZE beyond IDR1.CMDQS behaves as CMDQS; a PROD of all ones terminates.
    rig.cr0(CR0_EVTQEN | CR0_SMMUEN);
    rig.w64(CMDQ_BASE, CMDQ | 31);
    rig.w32(CMDQ_CONS, 0);
    rig.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    rig.w32(CMDQ_PROD, u32::MAX);
    assert_eq!(rig.r32(CMDQ_PROD), (2 << CMDQS) - 1);
    assert!(rig.r32(CMDQ_CONS) >> 24 != 0 || rig.r32(CMDQ_CONS) == rig.r32(CMDQ_PROD));
}
