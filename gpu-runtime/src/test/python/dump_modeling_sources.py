# Copies the transformers modeling sources of the supported families into OUT for reading.
import inspect, sys, os, transformers
import transformers.models.mixtral.modeling_mixtral as a, transformers.models.qwen2_moe.modeling_qwen2_moe as b
import transformers.models.qwen3_moe.modeling_qwen3_moe as c, transformers.models.olmoe.modeling_olmoe as d
for m in (a, b, c, d):
    open(os.path.join(sys.argv[1], m.__name__.split(".")[-1] + ".py"), "w").write(inspect.getsource(m))
print(transformers.__version__)
