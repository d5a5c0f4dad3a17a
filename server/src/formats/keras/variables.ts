// Which weights each Keras layer class owns, in the order Keras creates them. Keras 3 stores
// them numbered (`vars/0`, `vars/1`), so the order is the only way to name them; Keras 2
// names them (`dense/kernel:0`), and the order is a fallback for old files.

const CONV = /^(Conv[123]D|Convolution[123]D|Conv[123]DTranspose|Convolution[123]DTranspose)$/;
const DEPTHWISE = /^DepthwiseConv[12]D$/;
const SEPARABLE = /^(SeparableConv[12]D|SeparableConvolution[12]D)$/;

/** Classes without weights of their own. */
const WEIGHTLESS = new Set([
  'InputLayer', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'Softmax', 'ThresholdedReLU',
  'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout',
  'ActivityRegularization', 'Identity', 'Flatten', 'Reshape', 'Permute', 'RepeatVector',
  'MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D', 'AveragePooling1D', 'AveragePooling2D', 'AveragePooling3D',
  'MaxPool1D', 'MaxPool2D', 'MaxPool3D', 'AvgPool1D', 'AvgPool2D', 'AvgPool3D',
  'GlobalMaxPooling1D', 'GlobalMaxPooling2D', 'GlobalMaxPooling3D', 'GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalAveragePooling3D',
  'GlobalMaxPool1D', 'GlobalMaxPool2D', 'GlobalMaxPool3D', 'GlobalAvgPool1D', 'GlobalAvgPool2D', 'GlobalAvgPool3D',
  'ZeroPadding1D', 'ZeroPadding2D', 'ZeroPadding3D', 'Cropping1D', 'Cropping2D', 'Cropping3D', 'UpSampling1D', 'UpSampling2D', 'UpSampling3D',
  'Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum', 'Concatenate', 'Dot', 'Masking',
]);

const flag = (cfg: Record<string, unknown>, key: string): boolean => cfg[key] !== false;

/**
 * Weight roles of a layer in creation order; [] for classes without weights; undefined for
 * classes this reader does not know (their weights are kept under generic names).
 */
export function variableRoles(className: string, cfg: Record<string, unknown>): string[] | undefined {
  if (WEIGHTLESS.has(className)) return [];
  const bias = flag(cfg, 'use_bias') ? ['bias'] : [];
  if (className === 'Dense') return ['kernel', ...bias];
  if (CONV.test(className)) return ['kernel', ...bias];
  if (DEPTHWISE.test(className)) return ['depthwise_kernel', ...bias];
  if (SEPARABLE.test(className)) return ['depthwise_kernel', 'pointwise_kernel', ...bias];
  if (className === 'BatchNormalization') {
    return [...(flag(cfg, 'scale') ? ['gamma'] : []), ...(flag(cfg, 'center') ? ['beta'] : []), 'moving_mean', 'moving_variance'];
  }
  if (className === 'LayerNormalization') return [...(flag(cfg, 'scale') ? ['gamma'] : []), ...(flag(cfg, 'center') ? ['beta'] : [])];
  if (className === 'PReLU') return ['alpha'];
  if (className === 'Embedding') return ['embeddings'];
  return undefined;
}

/** The role in a Keras 2 weight name: "conv2d/kernel:0" → "kernel". */
export function roleFromWeightName(weightName: string): string {
  const last = weightName.split('/').pop() ?? weightName;
  return last.replace(/:\d+$/, '');
}

/** Keras 3's naming.to_snake_case, which names a layer's weight group by its class. */
export function snakeCase(className: string): string {
  return className
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}
