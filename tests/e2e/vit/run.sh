#!/usr/bin/env bash
# run.sh GVC SRC - WORK - the tiny ViT of models/vit.gvm on the digits (gvc data --images):
# its step-0 logits, loss and gradients (--init_from the fixture's weights, --dump) equal a
# random transformers ViTForImageClassification's on the same images (within 1e-5 of the
# largest logit, 1e-5 relative, 1e-4 of each gradient's largest), also with the weights
# imported from the model's Hugging Face folder by gvc convert (--split 1: the fixture's images
# are the first of the whole set's seeded shuffle); a trained checkpoint goes out
# to Hugging Face (num_labels written) and back in unchanged; 400 steps take the loss
# below 1.5 (ln 10 = 2.30 at the start); an image of the wrong size, a label out of range, a
# truncated dataset, images of another size than the model's and the wrong --seq are
# refused with messages naming the file and the record.
. "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
export GV_COMM=self
gvm=$src/models/vit.gvm; fx=$src/tests/reference/fixtures/vit_tiny.bin; digits=$src/tests/data/digits/digits.csv.gz
"$gvc" data --images "$digits" --shape 1,8,8 --pixel-max 16 -o digits.gvimg >data.log 2>&1 \
  && grep -q "1797 images of 1x8x8 (channels x height x width), 10 classes" data.log && ok || bad "gvc data: $(cat data.log)"
"$gvc" compile "$gvm" --model vit_tiny --seq 17 --micro-batch 4 -o vit >compile.log 2>&1 || bad "compile: $(cat compile.log)"

# against transformers
./vit --init_from "$fx" --data digits.gvimg --split 1 --seed 1234 --iters 1 --global_train_batch_size 4 --dump d.bin >ref.log 2>&1
"$HF_CHECK" logits d.bin "$fx" && ok || bad "logits"
"$HF_CHECK" grads d.bin "$fx" && ok || bad "gradients"
"$HF_CHECK" loss "$(losses <ref.log | head -1)" "$fx" && ok || bad "step-0 loss"

# the same model as transformers saved it, through gvc convert (models/vit.hf.map), and back
"$gvc" convert "$gvm" --model vit_tiny --from-hf "$src/tests/reference/hf/vit" -o hf.safetensors >conv.log 2>&1 \
  && ./vit --init_from hf.safetensors --data digits.gvimg --split 1 --seed 1234 --iters 1 --global_train_batch_size 4 \
       --dump h.bin >>conv.log 2>&1 && "$HF_CHECK" logits h.bin "$fx" && ok || bad "import: $(tail -2 conv.log)"
./vit --init_from hf.safetensors --data digits.gvimg --iters 2 --global_train_batch_size 4 --save ck \
  --dump_params trained.params >>conv.log 2>&1 \
  && "$gvc" convert "$gvm" --model vit_tiny --load ck --to-hf out >>conv.log 2>&1 \
  && grep -q '"num_labels":.*10' out/config.json \
  && "$gvc" convert "$gvm" --model vit_tiny --from-hf out -o again.safetensors >>conv.log 2>&1 \
  && ./vit --init_from again.safetensors --data digits.gvimg --iters 0 --global_train_batch_size 4 \
       --dump_params again.params >>conv.log 2>&1 \
  && cmp -s trained.params again.params && ok || bad "checkpoint -> Hugging Face -> gvc: $(tail -3 conv.log)"

# it learns the digits
./vit --data digits.gvimg --iters 400 --warmup 10 --lr 3e-3 --global_train_batch_size 16 --log_interval 10 >train.log 2>&1
last=$(losses <train.log | tail -5 | awk '{s += $1} END {print s / NR}')
awk -v l="$last" 'BEGIN {exit !(l < 1.5)}' && ok || bad "training: the last losses average $last, not below 1.5"

# refusals
refused() { # WHAT PATTERN COMMAND...
  local what=$1 pat=$2; shift 2
  out=$("$@" 2>&1) && { bad "$what: accepted"; return; }
  echo "$out" | grep -q -- "$pat" && ok || bad "$what: '$out' does not say '$pat'"
}
zcat "$digits" | head -3 >three.csv
{ head -2 three.csv; tail -1 three.csv | sed 's/^0,//'; } >short.csv
refused "an image of 63 pixels" "short.csv:3: 64 values, but an image of 1x8x8 and its label are 65" \
  "$gvc" data --images short.csv --shape 1,8,8 --pixel-max 16 -o x.gvimg
[ ! -e x.gvimg ] && ok || bad "a refused dataset was written"
{ head -2 three.csv; tail -1 three.csv | sed 's/,[0-9]*$/,10/'; } >label.csv
refused "label 10 of 10 classes" "label.csv:3: label 10 is outside 0..9" \
  "$gvc" data --images label.csv --shape 1,8,8 --pixel-max 16 --classes 10 -o x.gvimg
refused "a pixel above --pixel-max" "three.csv:1: pixel 3 is 5, outside 0..4" \
  "$gvc" data --images three.csv --shape 1,8,8 --pixel-max 4 -o x.gvimg
mkdir -p folder/0 folder/3
printf 'P5\n8 8\n255\n' >folder/0/a.pgm; head -c 64 /dev/zero >>folder/0/a.pgm
printf 'P5\n9 8\n255\n' >folder/3/b.pgm; head -c 72 /dev/zero >>folder/3/b.pgm
refused "a 9x8 image among 8x8" "folder/3/b.pgm: a 1x8x9 image (channels x height x width), but the dataset's are 1x8x8" \
  "$gvc" data --images folder -o x.gvimg
rm folder/3/b.pgm; printf 'P5\n8 8\n255\n' >folder/3/b.pgm; head -c 64 /dev/zero >>folder/3/b.pgm
"$gvc" data --images folder -o folder.gvimg | grep -q "2 images of 1x8x8 (channels x height x width), 4 classes" \
  && ok || bad "a folder of PGM images"
mkdir -p rgb/1 && printf 'P6\n# a comment\n2 2\n255\n' >rgb/1/x.ppm && printf '\001\002\003\004\005\006\007\010\011\012\013\014' >>rgb/1/x.ppm
"$gvc" data --images rgb -o rgb.gvimg --quiet && [ "$(od -An -tu1 -j36 rgb.gvimg | tr -s ' ')" = " 1 4 7 10 2 5 8 11 3 6 9 12" ] \
  && ok || bad "an RGB PPM image is not stored channel-major: $(od -An -tu1 -j36 rgb.gvimg)"
head -c 1000 digits.gvimg >cut.gvimg
refused "a truncated dataset" "cut.gvimg: 1000 bytes, but 1797 images of 1x8x8 need" ./vit --data cut.gvimg --iters 1 \
  --global_train_batch_size 4
cp digits.gvimg bad.gvimg; printf '\x0c' | dd of=bad.gvimg bs=1 seek=$((32 + 5 * 68)) conv=notrunc 2>/dev/null
refused "a stored label out of range" "bad.gvimg: image 5 has label 12, outside the 10 classes" ./vit --data bad.gvimg \
  --iters 1 --global_train_batch_size 4
"$gvc" data --images folder --shape 1,8,8 -o grey.gvimg >/dev/null 2>&1
"$gvc" data --images "$digits" --shape 4,4,4 --pixel-max 16 -o small.gvimg >/dev/null 2>&1 || bad "4x4x4 images"
refused "images of another size" "small.gvimg: images of 4x4x4 (channels x height x width), but the model reads 1x8x8" \
  ./vit --data small.gvimg --iters 1 --global_train_batch_size 4
refused "the wrong --seq" "reads sequences of 17 (its 16 patches and the class token): compile it with --seq 17, not 16" \
  "$gvc" compile "$gvm" --model vit_tiny --seq 16 -o x
refused "a token batch" "an image model reads images, not a fixed token batch" ./vit --iters 1 \
  --batch_from "$src/tests/reference/fixtures/tiny_gpt.bin" --global_train_batch_size 4
refused "sampling" "an image model classifies images; it does not generate tokens" ./vit --data digits.gvimg \
  --iters 1 --sample 4 --global_train_batch_size 4
./vit --data synthetic --iters 2 --global_train_batch_size 4 >synthetic.log 2>&1 && [ "$(losses <synthetic.log | wc -l)" -ge 2 ] \
  && ok || bad "synthetic images: $(tail -2 synthetic.log)"
finish
