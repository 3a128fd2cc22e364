#!/usr/bin/env python3
"""Galvatron's cost model for models with several layer types, re-implemented from its
source to give the golden numbers of `gvc cost` on Galvatron's shipped T5 and Swin configs.

Usage: galvatron_multitype_cost.py DATA_DIR > tests/data/galvatron/golden/golden_costs_multitype.json
(DATA_DIR = tests/data/galvatron). Plain Python 3, no third-party packages.

Formulas, each from PKU-DAIR/Hetu-Galvatron at commit cea12ffb146a220643c8f99f9cb84294755d29f8
(the cost model gvc follows, docs/galvatron-search.md):
  - readers: galvatron/core/search_engine/search_engine.py (get_profiled_model_configs,
    set_cost_models: one ModelArgs per layer type with its own parameter_size, seq_length,
    hidden_size and layer_num) and galvatron/utils/config_utils.py
    (read_allreduce_bandwidth_config, read_p2p_bandwidth_config, remap_config_for_latency);
  - layer time and memory: galvatron/core/cost_model/components/layer_cost.py
    (TimeCostModelBase, MemoryCostModelBase), per layer type;
  - embedding / LM head: galvatron/core/cost_model/components/embedding_lmhead_cost.py
    (the all-gather at the first and the last type's sequence length, type 0's hidden size);
  - pipeline: galvatron/core/cost_model/cost_model_handler.py (pipeline_costmodel);
  - Megatron-SP's global buffer: galvatron/core/search_engine/dynamic_programming.py (the
    model's hidden size times the longest sequence).

Where Galvatron's readers cannot read its own shipped multi-type files, this script (and gvc)
read what the files mean:
  - static time mode: search_engine.py appends every 'layertype_{i}_*' key of every type to
    one list and gives type i the list's i-th entry, so with several batch sizes per type
    (T5's file: bsz 1..8) type 1 would get layertype_0_bsz2; here each type takes its own
    first key in file order (Swin's file, one key per type, reads the same either way);
  - the "other" memory is keyed by the tuple of sequence lengths, '[512,512]' in the v2.4
    files, which HEAD's num2str spells '512_512' and its Megatron-SP path passes to int();
    here the key is taken as the file writes it;
  - v2.4 files profiled without Megatron-SP have no '_sp' keys: the plain keys are read.
"""
import json
import math
import os
import sys

MB = 1024 * 1024


def ols(xs, ys):
    """Least squares line y = m x + c (what scipy's curve_fit returns for it)."""
    n = len(xs)
    sx, sy = sum(xs), sum(ys)
    sxx = sum(x * x for x in xs)
    sxy = sum(x * y for x, y in zip(xs, ys))
    d = n * sxx - sx * sx
    m = (n * sxy - sx * sy) / d if d else 0.0
    return m, (sy - m * sx) / n


class Hardware:
    def __init__(self, d, world):
        ar = json.load(open(os.path.join(d, 'allreduce_bandwidth_1nodes_8gpus_per_node.json')))
        self.coe = {'1': 0, '1_1': 0, '1_0': 0}
        w = world
        self.coe['%d' % w] = self.coe['%d_1' % w] = self.coe['%d_0' % w] = 1.0 / ar['allreduce_size_%d_consec_1' % w]
        w //= 2
        while w >= 2:
            self.coe['%d_0' % w] = 1.0 / ar['allreduce_size_%d_consec_0' % w]
            self.coe['%d_1' % w] = 1.0 / ar['allreduce_size_%d_consec_1' % w]
            w //= 2
        p2p = json.load(open(os.path.join(d, 'p2p_bandwidth_1nodes_8gpus_per_node.json')))
        self.p2p = {int(k.split('_')[-1]): 1.0 / v for k, v in p2p.items() if 'pp_size_' in k}
        self.overlap = json.load(open(os.path.join(d, 'overlap_coefficient.json')))['overlap_coe']
        sp = json.load(open(os.path.join(d, 'sp_time_1nodes_8gpus_per_node.json')))
        self.ag = self.latency(sp, 'allreduce_size', 0.5)
        self.a2a = self.latency(sp, 'all2all_size', 1.0)

    @staticmethod
    def latency(cfg, prefix, factor):
        out = {}
        for k, v in cfg.items():
            if k.startswith(prefix):
                s = k.split('_')
                out.setdefault(int(s[-3]), {})[int(s[-2][:-2])] = v * factor
        for t in out.values():
            t['popt'] = ols(list(t.keys()), list(t.values()))
        return out

    def message_time(self, table, mb):
        if mb in table:
            return table[mb]
        m, c = table['popt']
        return m * mb + c


class Model:
    """Profiles of one model: per layer type (layer_num, hidden, seq) from its meta config."""

    def __init__(self, time_path, mem_path, types, sp):
        self.types = types
        tcfg = json.load(open(time_path))
        self.fwd = []
        for i in range(len(types)):
            keys = [k for k in tcfg if k.startswith('layertype_%d_' % i)]
            self.fwd.append(tcfg[keys[0]])
        self.other_fwd = [v for k, v in tcfg.items() if k.startswith('layertype_other_')][0]
        mcfg = json.load(open(mem_path))

        def entry(key):
            return mcfg[key + '_sp'] if sp and key + '_sp' in mcfg else mcfg[key]

        self.param, self.act = [], []
        for i, (_, _, seq) in enumerate(types):
            e = entry('layertype_%d' % i)[str(seq)]
            self.param.append(e['parameter_size'])
            self.act.append({k if k == 'checkpoint' else int(k): v for k, v in e['tp_activation_per_bsz_dict'].items()})
        skey = '[' + ','.join(str(t[2]) for t in types) + ']'

        def other(key):
            e = entry(key)[skey]
            return {f: {int(k): v for k, v in e[f].items()} for f in ('model_states', 'activation')}

        self.off = other('other_memory_pp_off')
        self.first = other('other_memory_pp_on_first')
        self.last = other('other_memory_pp_on_last')


class Args:
    mixed = True
    sequence_parallel = True
    async_grad_reduce = True
    pipeline = 'pipedream_flush'
    default_zero2 = True
    context_mem = 1024
    global_memory_buffer = True


def strategy(pp, tpsp, use_sp, zero3, ckpt, world, args):
    tp, sp = (1, tpsp) if use_sp else (tpsp, 1)
    dp = world // pp // tpsp
    sdp = dp * sp
    dp_type = 'ddp' if sdp == 1 else ('zero3' if zero3 else ('zero2' if args.default_zero2 else 'ddp'))
    return dict(pp=pp, tp=tp, sp=sp, dp=dp, sdp=sdp, tpsp=tpsp, dp_type=dp_type, ckpt=ckpt)


def zero_ratios(chunks, args):
    if chunks == 1:
        z2 = (lambda d: 7 / 8 * (1 / d + 0.003) + 1 / 8) if args.mixed else (lambda d: 3 / 4 * (1 / d + 0.003) + 1 / 4)
        z3 = lambda d: 1 / d + 0.003
    elif args.async_grad_reduce:
        z2 = (lambda d: 6 / 8 * (1 / d + 0.003) + 2 / 8) if args.mixed else (lambda d: 2 / 4 * (1 / d + 0.003) + 2 / 4)
        z3 = (lambda d: 7 / 8 * (1 / d + 0.003) + 1 / 8) if args.mixed else (lambda d: 3 / 4 * (1 / d + 0.003) + 1 / 4)
    else:
        z2 = (lambda d: (7 / 8 * (1 / d + 0.003) + 1 / 8) * 5 / 4) if args.mixed else (lambda d: 3 / 4 * (1 / d + 0.003) + 1 / 4)
        z3 = lambda d: (1 / d + 0.003) * 5 / 4
    return z2, z3


def layer_time(m, hw, args, s, k, gbsz, chunks, no_sync):
    """layer_cost.py TimeCostModelBase.get_result for a layer of type k."""
    layer_num, hidden, seq = m.types[k]
    lbsz = gbsz // chunks // s['dp']
    fct = m.fwd[k] * lbsz / s['tpsp'] * layer_num
    bct = fct * 2 + (fct if s['ckpt'] else 0)
    param = m.param[k] / s['tp']
    msg = 2 * (s['sdp'] - 1) * (param / s['sdp']) * layer_num
    if args.mixed:
        msg /= 2
    dc = hw.coe['%d_0' % s['sdp'] if s['tp'] != 1 else '%d_1' % s['sdp']]
    dco = dc * hw.overlap
    tpt = 0
    if s['tpsp'] > 1:
        n = (4 if s['tp'] == 1 else 6) * layer_num * (1.5 if s['ckpt'] else 1)
        table = hw.a2a[s['sp']] if s['tp'] == 1 else hw.ag[s['tp']]
        tpt = n * hw.message_time(table, lbsz * seq * hidden * (2 if args.mixed else 4) / MB)

    def overlap(dmsg):
        a, b = dmsg * dco, bct * hw.overlap
        if a > b:
            return b + (dmsg - b / dco) * dc
        if a < b:
            return a + (bct - a / hw.overlap)
        return b

    factor = 0 if no_sync else 1
    if s['tpsp'] == 1 and s['dp'] > 1:
        r = fct + overlap(msg * factor)
    elif s['dp'] == 1 and s['tpsp'] > 1:
        r = fct + bct + tpt
    elif s['dp'] == 1 and s['tpsp'] == 1:
        r = fct + bct
    else:
        r = fct + overlap(msg * factor) + tpt
    if s['dp_type'] == 'zero3':
        r += msg * 0.5 * dc
    if s['pp'] > 1:
        p2p = s['pp'] * 2 * lbsz * seq * hidden * 4 / MB
        if args.mixed:
            p2p /= 2
        r += p2p * hw.p2p[s['pp']]
    return r * 0.001 / layer_num


def layer_mem(m, args, s, k, gbsz, chunks, stage):
    """layer_cost.py MemoryCostModelBase for a layer of type k: model states + activation."""
    lbsz = gbsz // chunks // s['dp']
    cum = 1 if s['pp'] == 1 else (s['pp'] - stage if args.pipeline == 'pipedream_flush' else chunks)
    z2, z3 = zero_ratios(chunks, args)
    ms = 4 * m.param[k] / s['tp']
    if s['dp_type'] == 'zero3':
        ms *= z3(s['sdp'])
    elif s['dp_type'] == 'zero2':
        ms *= z2(s['sdp'])
    if s['ckpt']:
        act = m.act[k]['checkpoint'] * cum * lbsz
        if s['sp'] > 1 or (s['tp'] > 1 and args.sequence_parallel):
            act /= s['tpsp']
    else:
        act = m.act[k][s['tpsp']] * cum * lbsz
    return ms + act


def embed_time(m, hw, args, e, gbsz, chunks, no_sync):
    """embedding_lmhead_cost.py EmbeddingLMHeadTimeCostModel.gen_result (per stage)."""
    pp = e['pp']
    lbsz = gbsz // chunks // e['dp']
    f = m.other_fwd * lbsz / e['tpsp']
    fct = [0.0] * pp
    if pp == 1:
        fct[0] = f
    else:
        fct[0] = fct[-1] = f / 2
    dp_coe = hw.coe['%d_0' % e['sdp'] if e['tp'] != 1 else '%d_1' % e['sdp']] * (e['sdp'] - 1) / e['sdp']
    factor = 0.5 if args.mixed else 1.0
    msg = [0.0] * pp
    if pp == 1:
        msg[0] = m.off['model_states'][e['tp']] / 4 * factor
    else:
        msg[0] = m.first['model_states'][e['tp']] / 4 * factor
        msg[-1] = m.last['model_states'][e['tp']] / 4 * factor
    fwd_f, bwd_f = (0.5, 1.0) if e['dp_type'] == 'zero3' else (0.0, 0.5)
    per_seq = []
    for (_, _, seq) in (m.types[0], m.types[-1]):
        if e['tp'] > 1:
            per_seq.append(hw.message_time(hw.ag[e['tp']], lbsz * seq * m.types[0][1] * (2 if args.mixed else 4) / MB))
        else:
            per_seq.append(0)
    tpt = [0.0] * pp
    if pp == 1:
        tpt[0] = per_seq[0] + per_seq[-1]
    else:
        tpt[0], tpt[-1] = per_seq[0], per_seq[-1]

    def ov(fcomm, fcomp, bcomm, bcomp, t):
        fcomp *= hw.overlap
        bcomp *= hw.overlap
        fw = fcomm + (fcomp - fcomm) / hw.overlap if fcomp > fcomm else fcomm
        bw = bcomm + (bcomp - bcomm) / hw.overlap if bcomp > bcomm else bcomm
        return fw + bw + t

    out = [0.0] * pp
    b = bwd_f - 0.5 if no_sync else bwd_f
    for i in sorted({0, pp - 1}):
        out[i] = 0.001 * ov(msg[i] * dp_coe * fwd_f, fct[i], msg[i] * dp_coe * b, fct[i] * 2, tpt[i])
    return out


def embed_mem(m, args, e, gbsz, chunks):
    """embedding_lmhead_cost.py EmbeddingLMHeadMemoryCostModel enc_total (per stage)."""
    pp = e['pp']
    lbsz = gbsz // chunks // e['dp']
    z2, z3 = zero_ratios(chunks, args)
    z = z3(e['sdp']) if e['dp_type'] == 'zero3' else z2(e['sdp']) if e['dp_type'] == 'zero2' else 1.0
    ms, act = [0.0] * pp, [0.0] * pp
    if pp == 1:
        ms[0] = m.off['model_states'][e['tp']] * z
        act[0] = m.off['activation'][e['tpsp']] * lbsz
    else:
        ms[0] = m.first['model_states'][e['tp']] * z
        ms[-1] = m.last['model_states'][e['tp']] * z
        first, last = (pp, 1) if args.pipeline == 'pipedream_flush' else (chunks, chunks)
        act[0] = m.first['activation'][e['tpsp']] * lbsz * first
        act[-1] = m.last['activation'][e['tpsp']] * lbsz * last
    return [a + b + args.context_mem for a, b in zip(ms, act)]


def pipeline(pp, chunks, wg, c):
    """cost_model_handler.py pipeline_costmodel from per-stage sums."""
    r = sum(c) + c[-1] * (chunks - 1)
    w = min(pp - 1, chunks - 1) * c[0]
    r = max(r, max(w / 3, sum(c[1:]) / 3) + max(w * 2 / 3, sum(c[1:]) * 2 / 3) + c[0] * max(0, chunks + 1 - pp))
    red = max(wg[i] - sum(c[:i + 1]) for i in range(pp))
    return r + (red if red > 0 else 0)


def division_balanced(m, args, pp, gbsz, chunks, world):
    """search_engine.py pp_division_memory_balanced: stages filled in layer order up to the
    average memory of a reference strategy (tp 1, dp world/pp, ZeRO-2, arguments copied with
    pipeline_type 'gpipe'), the embedding and head (enc_total, context memory included) too."""
    class G(args):
        pipeline = 'gpipe'
    s = strategy(pp, 1, 0, 0, 0, world, G)
    lay = []
    for k, (n, _, _) in enumerate(m.types):
        lay += [layer_mem(m, G, s, k, gbsz, chunks, 0)] * n
    other = embed_mem(m, G, s, gbsz, chunks)
    avg = (sum(lay) + sum(other)) / pp
    div, mem, idx = [0] * pp, list(other), 0
    for i in range(pp):
        while idx < len(lay) and not (i < pp - 1 and avg - mem[i] < 0.5 * lay[idx]):
            mem[i] += lay[idx]
            idx += 1
            div[i] += 1
    for i in range(pp - 1):
        left, right = sum(div[:i]), sum(div[:i + 1])
        cur = sum(lay[left:right]) + other[i]
        while cur > avg * 1.3:
            div[i] -= 1
            div[i + 1] += 1
            right -= 1
            cur -= lay[right]
    for i in range(pp - 1):
        while div[i] <= 0:
            div[i] += 1
            div[i + 1] -= 1
    for i in range(pp - 1, 0, -1):
        while div[i] <= 0:
            div[i] += 1
            div[i - 1] -= 1
    return div


def evaluate(m, hw, args, cfg_path, world):
    cfg = json.load(open(cfg_path))
    arr = lambda k: [int(x) for x in str(cfg[k]).split(',')]
    pp, gbsz, chunks = cfg['pp_deg'], cfg['global_bsz'], cfg['chunks']
    tp, dpt, use_sp, ckpt, div = arr('tp_sizes_enc'), arr('dp_types_enc'), arr('use_sp'), arr('checkpoint'), arr('pp_division')
    types = []
    for k, (n, _, _) in enumerate(m.types):
        types += [k] * n
    assert len(types) == len(tp)
    layers = [strategy(pp, tp[l], use_sp[l], dpt[l], ckpt[l], world, args) for l in range(len(tp))]
    e = strategy(pp, cfg.get('vtp', 1), cfg.get('vsp', 0), cfg.get('embed_sdp', 0), 0, world, args)
    wg, c, mem = [0.0] * pp, embed_time(m, hw, args, e, gbsz, chunks, True), embed_mem(m, args, e, gbsz, chunks)
    g = 0
    if args.sequence_parallel and args.global_memory_buffer and any(s['tp'] > 1 for s in layers):
        buf = max(s['tpsp'] for s in layers)
        cur_lbsz = gbsz / chunks / max(1, world // pp // buf)
        g = math.floor(cur_lbsz * m.types[0][1] * max(t[2] for t in m.types) * 4 / MB / 2)
    mem = [x + g for x in mem]
    l = 0
    for k in range(pp):
        for _ in range(div[k]):
            s, ty = layers[l], types[l]
            wg[k] += layer_time(m, hw, args, s, ty, gbsz, chunks, False)
            c[k] += layer_time(m, hw, args, s, ty, gbsz, chunks, True)
            mem[k] += layer_mem(m, args, s, ty, gbsz, chunks, k)
            l += 1
    return {'time_s': pipeline(pp, chunks, wg, c), 'memory_mb_per_stage': mem}


def main():
    data = sys.argv[1]
    v24 = os.path.join(data, 'v2.4.0')
    hw = Hardware(os.path.join(v24, 'hardware_configs'), 8)
    out = {'source': 'tests/reference/galvatron_multitype_cost.py (Galvatron HEAD cea12ffb cost model, formulas cited there)',
           'hardware': 'v2.4.0/hardware_configs, 1 node x 8 GPUs', 'cases': []}
    # (name, profile dir, model file name, layer types (layer_num, hidden, seq) from the meta config)
    cases = [('t5-3B', 'T5', 't5-3B', [(24, 1024, 512), (24, 1024, 512)]),
             ('swin-huge', 'swin', 'swin-huge', [(2, 320, 3136), (2, 640, 784), (42, 1280, 196), (2, 2560, 49)])]
    for name, d, f, types in cases:
        cdir = os.path.join(v24, d, 'configs')
        m = Model(os.path.join(cdir, 'computation_profiling_bf16_%s.json' % f),
                  os.path.join(cdir, 'memory_profiling_bf16_%s.json' % f), types, Args.sequence_parallel)
        cfg = 'galvatron_config_%s_1nodes_8gpus_per_node_34GB_bf16_[tpconsec_off].json' % f
        r = evaluate(m, hw, Args, os.path.join(cdir, cfg), 8)
        r['balanced_division'] = {'%d_%d_%d' % (pp, gbsz, ch): division_balanced(m, Args, pp, gbsz, ch, 8)
                                  for pp, gbsz, ch in ((2, 64, 2), (4, 64, 8), (8, 1024, 41))}
        out['cases'].append({'model': name, 'config': '%s/configs/%s' % (d, cfg),
                             'num_layers': [t[0] for t in types], 'hidden_size': [t[1] for t in types],
                             'seq_length': [t[2] for t in types], **r})
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == '__main__':
    main()
