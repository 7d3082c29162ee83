#!/usr/bin/env python3
"""Records the host kernel's answers for the objects in obj/: for each XDP
program, `bpftool prog run` on every packet of tests/golden/packets (retval and
the bytes out), into kernel_runs.json. As root with bpftool and bpffs at
/sys/fs/bpf. Usage: tests/isa618/capture.py"""
import json, os, subprocess, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PKTS = os.path.join(HERE, '..', 'golden', 'packets')


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main():
    index = json.load(open(os.path.join(PKTS, 'index.json')))
    out = {'kernel': os.uname().release, 'objects': []}
    for obj in sorted(os.listdir(os.path.join(HERE, 'obj'))):
        pin = '/sys/fs/bpf/isa618_capture'
        run(['bpftool', 'prog', 'loadall', os.path.join(HERE, 'obj', obj), pin])
        try:
            progs = []
            for name in sorted(os.listdir(pin)):
                runs = []
                for p in index:
                    with tempfile.NamedTemporaryFile() as f:
                        j = json.loads(run(['bpftool', '-j', 'prog', 'run', 'pinned',
                                            os.path.join(pin, name), 'data_in',
                                            os.path.join(PKTS, p['file']), 'data_out', f.name]))
                        runs.append({'packet': p['name'], 'retval': j['retval'],
                                     'data_out_hex': open(f.name, 'rb').read().hex()})
                progs.append({'program': name, 'runs': runs})
            out['objects'].append({'object': obj, 'programs': progs})
        finally:
            subprocess.run(['rm', '-rf', pin])
    with open(os.path.join(HERE, 'kernel_runs.json'), 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
